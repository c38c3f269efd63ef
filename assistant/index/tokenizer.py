"""Sudachi tokenisation with normalisation (子ども/子供/こども → 子供, ひとり親 → 一人親).

Mode C keeps compounds (ひとり親家庭) which alone hurts recall, so each compound also yields its
mode-A parts: ひとり親家庭 → ひとり親家庭, 一人, 親, 家庭.

A Sudachi tokenizer object cannot be used by two threads at once ("Already borrowed"), so each
thread gets its own, all created from one shared dictionary. Sudachi holds the GIL while it
works, so a lock would give the same throughput; per-thread objects just never wait
(benchmarks/tokenizer_threads.py measures both).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from sudachipy import Dictionary, SplitMode

_SKIP_POS = {"助詞", "助動詞", "補助記号", "空白", "記号"}
_VARIANTS = {"障がい": "障害", "障碍": "障害", "子育て": "子育て", "ひとり親": "一人親", "ひとり暮らし": "一人暮らし"}
_VARIANT_PATTERN = re.compile("|".join(map(re.escape, _VARIANTS)))
# Sudachi refuses input over ~49 KB; tokenise long text in pieces at line ends.
_MAX_PIECE_CHARS = 4000


def fold_variants(text: str) -> str:
    return _VARIANT_PATTERN.sub(lambda m: _VARIANTS[m.group(0)], text)


def _pieces(text: str) -> list[str]:
    if len(text) <= _MAX_PIECE_CHARS:
        return [text]
    pieces, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > _MAX_PIECE_CHARS:
            pieces.append(line[:_MAX_PIECE_CHARS])
            line = line[_MAX_PIECE_CHARS:]
        if len(current) + len(line) > _MAX_PIECE_CHARS:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return pieces


MAX_ENTRIES = 500_000  # dictionary entries remembered by `morphemes` (the core dictionary has about 3 million)
_UNSEEN = object()


def _content_entry(morpheme: Any) -> tuple[str, tuple[str, ...]] | None:
    """(normalised form, its other normalised mode-A parts), None for a particle, symbol or blank."""
    if morpheme.part_of_speech()[0] in _SKIP_POS:
        return None
    form = morpheme.normalized_form().lower()
    if not form.strip():
        return None
    parts = (p.normalized_form().lower() for p in morpheme.split(SplitMode.A))
    return form, tuple(p for p in parts if p != form and p.strip())


class JapaneseTokenizer:
    def __init__(self) -> None:
        self._dictionary = Dictionary(dict="core")
        self._per_thread = threading.local()
        # Dictionary entry → what `morphemes` keeps of it: the same entry always gives the same forms, and
        # asking Sudachi for them (part of speech, normalised form, mode-A split) was most of the analysis time.
        self._entries: dict[int, tuple[str, tuple[str, ...]] | None] = {}

    @property
    def _tokenizer(self):  # noqa: ANN202 - sudachipy.Tokenizer
        tokenizer = getattr(self._per_thread, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._per_thread.tokenizer = self._dictionary.create(mode=SplitMode.C)
        return tokenizer

    def morphemes(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """(normalised compound, normalised mode-A parts) for each content morpheme."""
        out: list[tuple[str, tuple[str, ...]]] = []
        entries = self._entries
        for piece in _pieces(fold_variants(text)):
            for morpheme in self._tokenizer.tokenize(piece):
                if morpheme.is_oov():
                    entry = _content_entry(morpheme)
                else:
                    word = morpheme.word_id()
                    entry = entries.get(word, _UNSEEN)
                    if entry is _UNSEEN:
                        entry = _content_entry(morpheme)
                        if len(entries) < MAX_ENTRIES:
                            entries[word] = entry
                if entry is not None:
                    out.append(entry)  # type: ignore[arg-type]
        return out

    def words(self, text: str) -> list[str]:
        """Every word in its normalised form, particles and auxiliaries included (ない・ません carry negation,
        which a reader of the message must see; BM25 leaves them out)."""
        out = []
        for piece in _pieces(fold_variants(text)):
            for morpheme in self._tokenizer.tokenize(piece):
                if morpheme.part_of_speech()[0] in ("補助記号", "空白"):
                    continue
                form = morpheme.normalized_form().lower()
                if form.strip():
                    out.append(form)
        return out

    def reading(self, text: str) -> str:
        """The text in katakana as it is read (kanji words by their dictionary reading), without symbols."""
        out = []
        for piece in _pieces(text):
            for morpheme in self._tokenizer.tokenize(piece):
                if morpheme.part_of_speech()[0] in ("補助記号", "空白", "記号"):
                    continue
                out.append(morpheme.reading_form())
        return "".join(out)

    def tokens(self, text: str) -> list[str]:
        """Tokens for BM25: each compound and its parts."""
        out: list[str] = []
        for form, parts in self.morphemes(text):
            out.append(form)
            out.extend(parts)
        return out


_shared: JapaneseTokenizer | None = None
_shared_lock = threading.Lock()


def get_tokenizer() -> JapaneseTokenizer:
    """The process's tokenizer (one dictionary, loaded once even when threads ask at the same time)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = JapaneseTokenizer()
    return _shared
