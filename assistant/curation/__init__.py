"""Curation of the knowledge base by the people who hold the official documents: corrections kept in the
database as an overlay over corpus/, their history, official case tables imported into the registry, and the
merge of an exported overlay into corpus/."""
