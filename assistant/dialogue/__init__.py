"""Conversations that keep state: multi-turn chat, the pre-filing checklist, help-desk reply drafts.

- `assistant.dialogue.chat.ChatService`: one consultation per session id, follow-ups resolved
  against earlier turns, answers streamed in pieces.
- `assistant.dialogue.checklist.ChecklistService`: the guided checklist and its 事前相談シート.
- `assistant.dialogue.reply.ReplyDrafter`: polite reply drafts for inquiries pasted by the help desk.
- `assistant.dialogue.store.DialogueStore`: the database behind them (`settings.resolved_database_url`).
- `assistant.dialogue.export`: Markdown, text and DOCX output.

Submodules are imported on use; this package import stays light.
"""
