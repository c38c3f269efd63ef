"""Writing files safely: only inside the folder they belong to, and whole or not at all.

`path_inside` resolves a path (symbolic links and `..` included) and refuses it when it leaves its
folder. `atomic_output` writes to a temporary file next to the target and renames it over the
target only when everything was written, so a full disk or a crash never leaves a truncated file
under the target's name (an existing file keeps its previous content).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from assistant.validation import InputError, ServiceError


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()  # read once: changing the umask is not thread-safe


class OutsideFolderError(InputError):
    """A path that would be written outside its folder."""


class WriteFailed(ServiceError):
    """A file could not be written (disk full, no permission); nothing was left under its name."""


def path_inside(folder: Path, path: Path | str) -> Path:
    """`path` (relative to `folder` unless absolute), resolved; OutsideFolderError when it is not inside `folder`."""
    base = Path(folder).resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise OutsideFolderError(f"書き込み先 {path} は保存先フォルダ {base} の外を指しているため、書き込みません")
    return resolved


def _temporary_file(target: Path) -> tuple[Path, BinaryIO]:
    """A new, empty file in the target's folder (so the final rename stays on one file system)."""
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    return Path(name), os.fdopen(descriptor, "wb")


def _failure_message(target: Path, error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason = "ディスクの空き容量が足りません"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "書き込みの権限がありません"
    else:
        reason = error.strerror or type(error).__name__
    return f"{target} を書き出せませんでした（{reason}）。途中までのファイルは残していません"


@contextmanager
def atomic_output(target: Path | str) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `target` when the block ends without an error."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary, handle = _temporary_file(target)
    except OSError as exc:
        raise WriteFailed(_failure_message(target, exc)) from exc
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o777)
        else:
            os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, target)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteFailed(_failure_message(target, exc)) from exc
        raise


def write_text_atomic(target: Path | str, text: str) -> Path:
    with atomic_output(target) as handle:
        handle.write(text.encode("utf-8"))
    return Path(target)


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
