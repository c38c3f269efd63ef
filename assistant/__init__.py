"""独自利用事務 情報連携 事前相談アシスタント — the library (no UI code here)."""

__version__ = "0.1.0"
