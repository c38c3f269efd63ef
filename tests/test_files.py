"""Writing files: only inside their folder, and whole or not at all (a full disk leaves no truncated file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant import files
from assistant.files import OutsideFolderError, WriteFailed, atomic_output, path_inside, write_text_atomic
from assistant.validation import InputError
from tests.full_disk import fill_disk_after


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    fill_disk_after(monkeypatch, room=100)


def test_paths_inside_the_folder_are_resolved(tmp_path: Path) -> None:
    assert path_inside(tmp_path, "web/sheet.md") == (tmp_path / "web" / "sheet.md").resolve()
    assert path_inside(tmp_path, tmp_path / "a" / ".." / "b.md") == (tmp_path / "b.md").resolve()


@pytest.mark.parametrize("name", ["../x.md", "事前相談シート-../../../../../outside/x-1a2b.md", "/etc/passwd", ".", "a/../.."])
def test_paths_leaving_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(OutsideFolderError) as caught:
        path_inside(folder, name)
    assert isinstance(caught.value, InputError) and "外" in str(caught.value)


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "exports", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "link").symlink_to(outside)
    with pytest.raises(OutsideFolderError):
        path_inside(folder, "link/x.md")


def test_a_complete_write_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out" / "sheet.md"
    write_text_atomic(target, "一回目\n")
    write_text_atomic(target, "二回目\n")
    assert target.read_text(encoding="utf-8") == "二回目\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["sheet.md"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~files._UMASK)


def test_a_full_disk_leaves_no_file_under_a_new_name(tmp_path: Path, full_disk: None) -> None:
    target = tmp_path / "sheet.md"
    with pytest.raises(WriteFailed, match="空き容量"):
        write_text_atomic(target, "あ" * 10_000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_keeps_the_previous_content(tmp_path: Path, full_disk: None) -> None:
    target = tmp_path / "sheet.md"
    target.write_text("前回の内容\n", encoding="utf-8")
    with pytest.raises(WriteFailed):
        write_text_atomic(target, "あ" * 10_000)
    assert target.read_text(encoding="utf-8") == "前回の内容\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.md"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "sheet.md"
    target.write_text("前回の内容\n", encoding="utf-8")
    os.chmod(target, 0o640)
    write_text_atomic(target, "新しい内容\n")
    assert target.stat().st_mode & 0o777 == 0o640


def test_an_error_while_writing_discards_the_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as handle:
            handle.write(b"{}\n")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
