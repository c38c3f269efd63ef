"""Checksums of an index build, and the private working copy of its Chroma files.

Every file of a build is listed with its sha256 in the manifest when the build is written, and with
its stamp (size, modification time, inode). Before a build is used, its files are checked against that
list, so a damaged or missing file gives a clear message instead of reaching the native vector library
(a damaged HNSW file can crash it). A file whose stamp is unchanged was not written since the build was
sealed and is not read again; any other file is hashed. `assistant index status` hashes every file.
Chroma also rewrites its files whenever it opens them, so each process opens a verified copy of
the Chroma folder, made file by file from the manifest, and deletes it when the index is closed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.files import process_alive

MANIFEST = "manifest.json"
CHROMA = "chroma"
WORKING_COPIES = ".open"
_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def build_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of a build (paths relative to the build, `/`-separated), manifest excluded."""
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST
    }


def file_stamp(path: Path) -> list[int]:
    """What changes when a file is written or replaced: size, modification time and inode."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ino]


def build_stamps(folder: Path, names: list[str]) -> dict[str, list[int]]:
    return {name: file_stamp(folder / name) for name in names}


def unchanged_since_sealed(path: Path, manifest: dict[str, Any], name: str) -> bool:
    stamps = manifest.get("stamps")
    if not isinstance(stamps, dict) or name not in stamps:
        return False
    try:
        return file_stamp(path) == list(stamps[name])
    except OSError:
        return False


@dataclass
class BuildCheck:
    build_id: str
    missing: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    unverifiable: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged or self.unverifiable)

    def describe(self) -> str:
        """A Japanese sentence naming what is wrong (for messages and `index status`)."""
        if self.unverifiable:
            return f"索引 {self.build_id} にはファイルの検証情報（チェックサム）がありません"
        parts = []
        if self.missing:
            parts.append(f"見つからないファイル {len(self.missing)} 件（{', '.join(self.missing[:3])}）")
        if self.damaged:
            parts.append(f"内容が変わったファイル {len(self.damaged)} 件（{', '.join(self.damaged[:3])}）")
        return f"索引 {self.build_id} が壊れています: " + "、".join(parts) if parts else f"索引 {self.build_id} は正常です"


def verify_build(
    folder: Path, manifest: dict[str, Any], *, skip_prefix: str | None = None, full: bool = False
) -> BuildCheck:
    """Compare the files of a build with the checksums of its manifest (`full`: hash even unchanged files)."""
    check = BuildCheck(folder.name)
    expected: dict[str, str] | None = manifest.get("files")
    if not isinstance(expected, dict) or not expected:
        check.unverifiable = True
        return check
    for name, checksum in sorted(expected.items()):
        if skip_prefix and name.startswith(skip_prefix):
            continue
        path = folder / name
        if not path.is_file():
            check.missing.append(name)
        elif (full or not unchanged_since_sealed(path, manifest, name)) and sha256_file(path) != checksum:
            check.damaged.append(name)
    if skip_prefix is None:
        present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        check.unexpected = sorted(present - set(expected) - {MANIFEST})
    return check


def copy_verified(source: Path, target: Path, checksum: str, manifest: dict[str, Any], name: str) -> bool:
    """Copy one file of a build; False when it does not match its checksum (hashed unless its stamp is unchanged)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if unchanged_since_sealed(source, manifest, name):
        shutil.copyfile(source, target)
        return True
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        for block in iter(lambda: reader.read(_BLOCK), b""):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest() == checksum


def working_copy(folder: Path, manifest: dict[str, Any]) -> tuple[Path | None, BuildCheck]:
    """A private, verified copy of the build's Chroma folder (None and the problems when it does not verify)."""
    check = BuildCheck(folder.name)
    expected = {k: v for k, v in (manifest.get("files") or {}).items() if k.startswith(f"{CHROMA}/")}
    if not expected:
        check.unverifiable = True
        return None, check
    root = folder.parent / WORKING_COPIES / f"{folder.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    for name, checksum in sorted(expected.items()):
        source = folder / name
        if not source.is_file():
            check.missing.append(name)
            continue
        if not copy_verified(source, root / name, checksum, manifest, name):
            check.damaged.append(name)
    if not check.ok:
        shutil.rmtree(root, ignore_errors=True)
        return None, check
    return root / CHROMA, check



def remove_stale_working_copies(index_dir: Path) -> int:
    """Delete working copies left by processes that no longer run (they hold indexed text)."""
    removed = 0
    for path in (index_dir / WORKING_COPIES).glob("*"):
        parts = path.name.rsplit(".", 2)
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if pid is None or (pid != os.getpid() and not process_alive(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
