"""Kept so that `python -m assistant.ui.accounts ...` keeps working: the accounts are library code in
`assistant.accounts` (use `python -m assistant.accounts`)."""

from __future__ import annotations

import sys

from assistant.accounts import *  # noqa: F403 - the same names as before the move
from assistant.accounts import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="python -m assistant.ui.accounts")


if __name__ == "__main__":
    sys.exit(main())
