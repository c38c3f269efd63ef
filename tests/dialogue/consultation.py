"""The scripted consultation that the Python API test and the command-line test both run."""

from collections.abc import Callable
from typing import Any

Check = Callable[[dict[str, Any]], bool]

# Nine turns; each test adds its own tenth.
CONSULTATION_TURNS: list[tuple[str, Check]] = [
    ("子ども医療費助成について、何の届出が必要ですか？", lambda r: r["needs_clarification"] and r["cases"] == [1]),
    ("まだです", lambda r: r["notification_type"] == "new"),
    ("それはいつ出せますか", lambda r: "年3回" in r["answer"] and r["cases"] == [1]),
    ("その前に準備しておくことは？", lambda r: "番号利用条例" in r["answer"] and "予算" in r["answer"]),
    ("準ずる法定事務は何ですか？", lambda r: "児童福祉法" in r["answer"]),
    ("今日の天気は？", lambda r: r["out_of_scope"]),
    ("ひとり親家庭等医療費助成は既に届出済みです。所得の情報を追加したい。何の届出？", lambda r: r["notification_type"] == "change" and r["cases"] == [10]),
    ("提出するものは何ですか？", lambda r: not r["out_of_scope"] and "変更届" in r["answer"]),
    ("ありがとうございました", lambda r: not r["out_of_scope"] and not r["citations"]),
]
