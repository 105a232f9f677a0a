"""What a web page on another site may not do: send this server a body at all.

A browser lets any page it shows post a form (``application/x-www-form-urlencoded``,
``text/plain``, no type) to any address, the user's loopback included, without asking the
target first. So every body must be declared ``application/json`` (a type a page on another
site cannot send without the browser asking this server first, which it never agrees to), and
requests that say they come from another site (``Origin``, ``Sec-Fetch-Site``) are refused
unless their origin was allowed at start. Reads by GET stay open: a link to the search page
from elsewhere still works.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from densekit.errors import InputError
from densekit.serve.middleware import reply
from densekit.serve.security import is_loopback

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(url: str) -> str:
    """``scheme://host[:port]``, lower-cased, the default port dropped: how browsers send it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        raise InputError(
            f"--allow-origin {url!r}: give an origin, scheme://host[:port], "
            "e.g. https://search.example.com"
        )
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port == 0:
        raise InputError(f"--allow-origin {url!r}: the port must be 1 to 65535")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _same_host(origin: str, host_header: str) -> bool:
    """Whether ``origin`` names the host (and port) the request was sent to."""
    try:
        parts = urlsplit(origin)
        origin_port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        target = urlsplit(f"//{host_header}")
        target_port = target.port
    except ValueError:
        return False
    if not parts.hostname or parts.hostname != target.hostname:
        return False
    # A Host header without a port means the scheme's default one.
    return (target_port or _DEFAULT_PORTS.get(parts.scheme)) == origin_port


class CrossSiteGuard:
    """Refuses bodies not declared JSON (415) and requests from other sites' pages (403), for
    the requests ``routed`` says an endpoint takes (others get their 404 or 405 from the app)."""

    def __init__(
        self,
        app: Any,
        allowed_origins: Iterable[str] = (),
        routed: Callable[[dict[str, Any]], bool] = lambda scope: True,
    ) -> None:
        self.app = app
        self.allowed = frozenset(normalise_origin(o) for o in allowed_origins)
        self.routed = routed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _BODY_METHODS
            or not self.routed(scope)
        ):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or []:
            headers.setdefault(name, value)
        refusal = self._refusal(headers)
        if refusal is not None:
            await reply(send, *refusal)
            return
        await self.app(scope, receive, send)

    def _refusal(self, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        origin = headers.get(b"origin", b"").decode("latin-1").strip()
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        allowed = bool(origin) and origin.lower() in self.allowed
        if origin and not allowed and not _same_host(origin.lower(), host):
            return 403, (
                f"refused: a request from {origin[:200]}, a page on another site; this server "
                "takes requests from its own pages and non-browser clients (start it with "
                "--allow-origin ORIGIN to let a trusted site's pages call it)"
            )
        if site in ("cross-site", "same-site") and not allowed:
            return 403, (
                f"refused: the browser says this request comes from another site "
                f"(Sec-Fetch-Site: {site}); start the server with --allow-origin ORIGIN to "
                "let a trusted site's pages call it"
            )
        declared = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if declared != b"application/json":
            shown = declared.decode("latin-1")[:100] or "none"
            return 415, (
                f"the request body must be sent as Content-Type: application/json (got {shown}); "
                "with curl: --json '{...}' or -H 'Content-Type: application/json'"
            )
        return None


class LoopbackHostGuard:
    """On a loopback server, answers 400 to requests addressed (``Host``) to a name that is not
    this machine's nor an allowed origin's host. A page whose domain an attacker points at
    127.0.0.1 (DNS rebinding) is the server's own origin to the browser; only ``Host`` tells."""

    def __init__(self, app: Any, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted = frozenset(
            urlsplit(normalise_origin(origin)).hostname for origin in allowed_origins
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = ""
            for name, value in scope.get("headers") or []:
                if name == b"host":
                    host = value.decode("latin-1").strip()
                    break
            hostname = _hostname(host)
            if hostname is None or not (is_loopback(hostname) or hostname in self.trusted):
                await reply(
                    send,
                    400,
                    f"refused: this server listens on loopback and the request is addressed to "
                    f"{host[:200]!r}, not to this machine (a web page pointing its own name at "
                    "127.0.0.1?); use http://127.0.0.1:PORT or http://localhost:PORT, or start "
                    "the server with --allow-origin https://NAME if a proxy in front passes "
                    "that name",
                )
                return
        await self.app(scope, receive, send)


def _hostname(host_header: str) -> str | None:
    """The host name of a ``Host`` header (lower case, without port or IPv6 brackets); None
    for one that is not ``host[:port]``."""
    try:
        parts = urlsplit(f"//{host_header}")
        port_ok = parts.port is not None or ":" not in host_header.rsplit("]", 1)[-1]
    except ValueError:  # a port that is not a number, an unclosed bracket
        return None
    if parts.netloc != host_header or "@" in host_header or not port_ok:
        return None
    return parts.hostname or None
