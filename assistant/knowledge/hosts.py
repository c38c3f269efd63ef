"""What a source's link points at when it is not the publisher's own page: a search engine's cached copy, a site
that reposts documents, a third-party viewer of statutes. The hosts are data (corpus/source-hosts.yaml)."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from assistant.yamlio import load_yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

HOSTS_FILE = "source-hosts.yaml"


class HostKind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^[a-z_]+$")
    label: str = Field(min_length=1)
    hosts: tuple[str, ...] = Field(min_length=1)

    def matches(self, host: str) -> bool:
        return any(host == h or host.endswith("." + h) for h in self.hosts)


@functools.cache
def load_host_kinds(corpus_dir: Path) -> tuple[HostKind, ...]:
    """The kinds listed in the corpus (none when the file is absent); ValueError naming the file when malformed."""
    path = Path(corpus_dir) / HOSTS_FILE
    if not path.is_file():
        return ()
    try:
        return tuple(HostKind.model_validate(item) for item in load_yaml(path.read_text(encoding="utf-8")) or [])
    except (ValidationError, TypeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: 形式が正しくありません（{exc}）") from exc


def link_label(url: str | None, corpus_dir: Path) -> str | None:
    """How to describe the link to a reader when it is not the original page (None when it is, or unknown)."""
    if not url:
        return None
    host = (urlsplit(url).hostname or "").lower()
    return next((k.label for k in load_host_kinds(Path(corpus_dir)) if k.matches(host)), None)
