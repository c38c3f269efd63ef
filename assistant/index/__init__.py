"""Building and opening the search index (BM25 over Sudachi tokens + dense vectors in Chroma)."""
