"""A simulated full disk: files written through `assistant.files` fail with ENOSPC after a few bytes."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import BinaryIO

import pytest

from assistant import files


class FillsUp:
    """A file handle on a disk that is full after `room` bytes (the first bytes do reach the file)."""

    def __init__(self, handle: BinaryIO, room: int) -> None:
        self._handle, self._room = handle, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._handle.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real handle
        return getattr(self._handle, name)

    def __enter__(self) -> "FillsUp":
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, room: int = 100) -> None:
    real = files._temporary_file

    def failing(target: Path) -> tuple[Path, FillsUp]:
        path, handle = real(target)
        return path, FillsUp(handle, room)

    monkeypatch.setattr(files, "_temporary_file", failing)
