"""The one error a document that cannot be ingested raises."""

from __future__ import annotations


class IngestError(ValueError):
    """A document cannot be ingested; the message says why, in Japanese, for the user."""
