"""Understanding a message: one typed reading (intents, affairs, notification facts) per message."""

from assistant.understand.reading import AffairMention, NotificationFacts, Reading

__all__ = ["AffairMention", "NotificationFacts", "Reading"]
