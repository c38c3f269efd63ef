"""Hybrid retrieval: BM25 + dense with normalised weighted fusion, optional reranking."""
