"""Ingestion of official documents (PDF, DOCX, XLSX/CSV, HTML, Markdown, text)."""
