"""API keys: read from a file, compared in constant time, required by the write endpoints;
and which addresses count as this machine only."""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from densekit.errors import InputError


def read_api_key(path: str | Path) -> str:
    """The key in ``path`` (its first line, without surrounding whitespace)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").strip().splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: no such API key file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the API key file is not UTF-8 text") from None
    key = lines[0].strip() if lines else ""
    if not key.isascii():
        raise InputError(f"{path}: the API key must be ASCII (HTTP headers carry no other text)")
    if len(key) < 16:
        raise InputError(
            f"{path}: the API key must be at least 16 characters; e.g. write one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE`"
        )
    return key


def key_matches(expected: str, presented: str | None) -> bool:
    if presented is None:
        return False
    # compare_digest takes as long whatever the first differing byte: no timing oracle.
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """Whether a server listening on ``host`` can be reached from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
