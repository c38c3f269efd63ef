"""Chunking: bounded size, split at paragraph and sentence ends, nothing lost or reordered."""

from assistant.ingest.chunker import split_text


def test_short_text_is_one_chunk() -> None:
    assert split_text("届出の種類。\n受付期間。", 100) == ["届出の種類。\n受付期間。"]


def test_chunks_respect_the_limit_and_keep_every_character_in_order() -> None:
    text = "\n".join(f"第{n}段落の文です。" * 7 for n in range(1, 30))
    chunks = split_text(text, 120)
    assert all(len(c) <= 120 for c in chunks)
    assert "".join(c.replace("\n", "") for c in chunks) == text.replace("\n", "")


def test_long_paragraphs_split_at_sentence_ends() -> None:
    paragraph = "".join(f"{n}番目の文。" for n in range(40))
    chunks = split_text(paragraph, 60)
    assert all(c.endswith("。") for c in chunks)


def test_a_run_on_sentence_is_cut_hard() -> None:
    chunks = split_text("あ" * 250, 100)
    assert [len(c) for c in chunks] == [100, 100, 50]


def test_blank_lines_make_no_empty_chunks() -> None:
    assert split_text("\n\n一。\n\n\n二。\n", 5) == ["一。\n二。"]
    assert split_text("\n\n一。\n\n\n二。\n", 3) == ["一。", "二。"]
