"""Test-only start-up hook for the app under test: log every network connection that would leave this machine.

Put on PYTHONPATH with NETGUARD_LOG=<file>; each attempted connection or name lookup for a host other than
the loopback is appended to that file (one line each). The connection itself is not blocked.
"""

from __future__ import annotations

import ipaddress
import os
import sys

_LOG = os.environ.get("NETGUARD_LOG")
_LOCAL_NAMES = {"", "localhost", "0.0.0.0", "::"}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple) -> None:
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) and address else None
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if not _is_local(host):
        with open(_LOG, "a", encoding="utf-8") as handle:  # noqa: PTH123 - no pathlib at start-up
            handle.write(f"{event} {host}\n")


if _LOG:
    sys.addaudithook(_hook)
