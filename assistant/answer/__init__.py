"""Grounded single-turn answers composed from retrieved passages and the advisors (no LLM needed)."""
