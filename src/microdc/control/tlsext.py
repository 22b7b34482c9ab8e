"""The TLS peer certificate in every request: the ASGI TLS extension, added to uvicorn's HTTP protocols.

uvicorn (up to the version pinned here) verifies client certificates (``ssl_cert_reqs``/``ssl_ca_certs``)
but does not pass them to the application. The ASGI spec has an extension for exactly this
(``scope["extensions"]["tls"]``, https://asgi.readthedocs.io/en/latest/specs/tls.html); uvicorn has open
pull requests implementing it. Until one lands, these subclasses of uvicorn's own HTTP protocols read the
verified certificate from the connection's ``ssl_object`` once, when the connection is made (asyncio calls
``connection_made`` only after the TLS handshake has finished), and add the extension to each request's
scope. A scope that already carries ``extensions.tls`` (a newer uvicorn, hypercorn) is left alone, so the
application code (`peer_certificate`) keeps working when the server grows the feature itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def tls_extension(ssl_object: Any) -> dict[str, Any] | None:
    """The ASGI TLS extension dict for a finished handshake (None for a plain-text connection)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,  # a certificate that fails verification never gets this far
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


def with_tls_extension(app: ASGIApp, ext: dict[str, Any]) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            extensions = scope.setdefault("extensions", {}) or {}
            scope["extensions"] = extensions
            extensions.setdefault("tls", ext)
        await app(scope, receive, send)

    return wrapped


class _TlsMixin:
    app: ASGIApp

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        ext = tls_extension(transport.get_extra_info("ssl_object"))
        if ext is not None:
            self.app = with_tls_extension(self.app, ext)


class H11TlsProtocol(_TlsMixin, H11Protocol):
    """uvicorn's h11 protocol + the ASGI TLS extension."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: uvicorn's "auto" would pick h11 too
    AutoTlsProtocol: type = H11TlsProtocol
else:

    class HttpToolsTlsProtocol(_TlsMixin, HttpToolsProtocol):
        """uvicorn's httptools protocol + the ASGI TLS extension."""

    AutoTlsProtocol = HttpToolsTlsProtocol


def peer_certificate(scope: Scope) -> str | None:
    """The PEM client certificate the TLS layer verified for this request, if any."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not tls:
        return None
    chain = tls.get("client_cert_chain") or []
    return str(chain[0]) if chain else None


def is_tls(scope: Scope) -> bool:
    return bool((scope.get("extensions") or {}).get("tls")) or scope.get("scheme") in ("https", "wss")
