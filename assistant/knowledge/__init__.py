"""The structured knowledge base in corpus/: typed, validated, rendered into indexable chunks."""

from assistant.knowledge.loader import CorpusError, Knowledge, load_knowledge

__all__ = ["CorpusError", "Knowledge", "load_knowledge"]
