"""The agent's TLS to the control plane: CA bundle, pins, client certificate, and errors that say why.

* **Trust.** `agent.yaml`'s ``tls.ca_file`` is the *only* trust anchor when set (the system store is not
  consulted, and neither are ``SSL_CERT_FILE``/``SSL_CERT_DIR``: what the agent trusts is in its config,
  not in its environment). Without it, the certifi bundle (public CAs) is used.
* **Pins.** ``tls.pins`` (SPKI ``sha256//BASE64`` or ``cert-sha256:HEX``) are checked inside the TLS
  handshake (`ssl.SSLContext.sslobject_class`), so a mismatching server never sees a byte of the request,
  let alone the bearer credential.
* **Client certificate.** ``tls.client_cert``/``client_key`` are presented on every connection. With
  ``request_certificate`` the agent makes its own key (0600) and sends a CSR at enrollment, and again at
  a rotation when the certificate nears its end; the key never leaves the site.
* **Errors.** `describe_tls_failure` turns the ssl exception buried in an httpx error into the reason
  (wrong CA, expired, hostname mismatch, pin mismatch, client certificate refused), which the uplink
  reports as kind ``tls`` and the runner logs as an ERROR.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from microdc.agent.config import TlsConfig
from microdc.protocol import pki

# OpenSSL X509_V_ERR_* codes (openssl/x509_vfy.h) → what an installer should check
_VERIFY_REASONS = {
    2: "wrong CA: the issuer of the server certificate is not in {ca}",
    9: "the server certificate is not valid yet (check the clocks)",
    10: "the server certificate has expired",
    18: "wrong CA: the server certificate is self-signed and not in {ca}",
    19: "wrong CA: the server's chain ends in a CA that is not in {ca}",
    20: "wrong CA: the server certificate is not signed by a CA in {ca}",
    21: "wrong CA: the server certificate is not signed by a CA in {ca}",
    62: "hostname mismatch: the server certificate does not name the host in `server:`",
    64: "hostname mismatch: the server certificate does not name the IP address in `server:`",
}
# TLS alerts the *server* sends about our client certificate
_ALERT_REASONS = {
    "CERTIFICATE_REQUIRED": "the server requires a client certificate (set tls.client_cert/client_key)",
    "CERTIFICATE_EXPIRED": "the server refused our client certificate: it has expired",
    "UNKNOWN_CA": "the server refused our client certificate: not signed by the CA it trusts",
    "BAD_CERTIFICATE": "the server refused our client certificate",
    "CERTIFICATE_REVOKED": "the server refused our client certificate: revoked",
    "CERTIFICATE_UNKNOWN": "the server refused our client certificate",
}


class PinMismatch(ssl.SSLCertVerificationError):
    """The server's certificate verified, but neither its key nor itself is one of `tls.pins`."""


def _pinned_sslobject(pins: list[pki.Pin]) -> type[ssl.SSLObject]:
    class PinnedSSLObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()  # raises SSLWantRead/Write until the handshake is complete
            der = self.getpeercert(binary_form=True)
            if not der or not pki.pin_matches(pins, der):
                got = pki.pins_of(x509.load_der_x509_certificate(der))[0] if der else "no certificate"
                raise PinMismatch(f"pin mismatch: the server presented {got}, which is not in tls.pins")

    return PinnedSSLObject


class AgentTls:
    """TLS settings of one agent: builds SSL contexts and keeps the client certificate current."""

    def __init__(self, cfg: TlsConfig, resolve: Callable[[str], Path]):
        self.cfg = cfg
        self.ca_file = resolve(cfg.ca_file) if cfg.ca_file else None
        self.client_cert = resolve(cfg.client_cert) if cfg.client_cert else None
        self.client_key = resolve(cfg.client_key) if cfg.client_key else None
        self.pins = [pki.parse_pin(p) for p in cfg.pins]
        self._pending_key: pki.PrivateKey | None = None

    # --- the SSL context ----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if self.ca_file is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies and checks host names; no default CAs
            ctx.load_verify_locations(cafile=str(self.ca_file))
        else:
            import certifi

            ctx = ssl.create_default_context(cafile=certifi.where())
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.has_client_cert():
            assert self.client_cert is not None and self.client_key is not None
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        if self.pins:
            ctx.sslobject_class = _pinned_sslobject(self.pins)
        return ctx

    def has_client_cert(self) -> bool:
        return bool(
            self.client_cert and self.client_key and self.client_cert.is_file() and self.client_key.is_file()
        )

    # --- the client certificate ---------------------------------------------------------------

    def cert_not_after(self) -> dt.datetime | None:
        if not self.has_client_cert():
            return None
        assert self.client_cert is not None
        try:
            return pki.load_cert(self.client_cert).not_valid_after_utc
        except pki.PkiError:
            return None

    def csr(self, site_hint: str | None, now: dt.datetime, *, enrolling: bool) -> str | None:
        """A CSR to send now (a new key in memory until its certificate arrives), or None."""
        if not (self.cfg.request_certificate and self.client_cert and self.client_key):
            return None
        end = self.cert_not_after()
        due = end is None or end - now <= dt.timedelta(days=self.cfg.renew_before_days)
        if not (enrolling or due):
            return None
        self._pending_key = pki.new_key(self.cfg.key_type)
        return pki.csr_pem(pki.make_csr(self._pending_key, site_hint or "unenrolled")).decode()

    def store_issued(self, answer: dict[str, Any]) -> bool:
        """Write the certificate the server signed for our pending key (key first, 0600); True if new."""
        pem = answer.get("client_certificate")
        key = self._pending_key
        if not pem or key is None or self.client_cert is None or self.client_key is None:
            return False
        cert = x509.load_pem_x509_certificate(str(pem).encode())
        if pki.spki_sha256(cert) != pki.spki_sha256_of_key(key):
            raise pki.PkiError("the certificate the server returned is not for the key this agent sent")
        tmp_key = self.client_key.with_name(self.client_key.name + ".new")
        tmp_key.unlink(missing_ok=True)
        pki.write_private(tmp_key, pki.key_pem(key))
        tmp_cert = self.client_cert.with_name(self.client_cert.name + ".new")
        pki.write_public(tmp_cert, str(pem).encode())
        os.replace(tmp_key, self.client_key)
        os.replace(tmp_cert, self.client_cert)
        self._pending_key = None
        return True


    def diagnose(self, server: str, timeout_s: float, now: dt.datetime) -> str | None:
        """Why connections fail although the handshake looked fine to us: with TLS 1.3 a server that
        refuses our client certificate says so in an alert that arrives *after* the client finished its
        handshake, and an HTTP client that already wrote its request sees only a broken pipe. So: check
        our certificate's dates, then do one bare handshake and read the server's alert."""
        end = self.cert_not_after()
        if end is not None and end <= now:
            return f"our client certificate {self.client_cert} expired at {end:%Y-%m-%d %H:%M} UTC"
        url = urlsplit(server)
        if url.scheme != "https" or not url.hostname:
            return None
        try:
            with (
                socket.create_connection((url.hostname, url.port or 443), timeout=timeout_s) as raw,
                self.ssl_context().wrap_socket(raw, server_hostname=url.hostname) as tls,
            ):
                tls.settimeout(min(timeout_s, 2.0))
                # A server content with us waits for the request (timeout). One that refuses our
                # certificate sends an alert or (asyncio servers) just closes: b"" at once.
                if tls.recv(1) == b"":
                    if not self.has_client_cert():
                        return _ALERT_REASONS["CERTIFICATE_REQUIRED"] + " (it closed the connection)"
                    return (
                        f"the server refused our client certificate {self.client_cert} (closed the "
                        "connection after the handshake: not signed by the CA it trusts, or revoked)"
                    )
        except TimeoutError:
            return None
        except (OSError, ssl.SSLError) as e:
            return describe_tls_failure(e, self.ca_file)
        return None


def describe_tls_failure(exc: BaseException, ca_file: Path | None) -> str | None:
    """Why a TLS connection failed, in words an installer can act on; None if it was not TLS."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, PinMismatch):
            return str(e.args[0] if e.args else e)
        if isinstance(e, ssl.SSLCertVerificationError):
            code = getattr(e, "verify_code", None)
            ca = str(ca_file) if ca_file else "the public CA bundle (set tls.ca_file for a private CA)"
            template = _VERIFY_REASONS.get(code) if isinstance(code, int) else None
            detail = getattr(e, "verify_message", "") or str(e)
            return (
                template.format(ca=ca) + f" ({detail})"
                if template
                else f"certificate verify failed: {detail}"
            )
        if isinstance(e, ssl.SSLError) and not isinstance(e, ssl.SSLEOFError):
            reason = str(getattr(e, "reason", "") or "")
            for key, text in _ALERT_REASONS.items():
                if key in reason:
                    return f"{text} ({reason})"
            if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
                return (
                    f"the server does not speak TLS on this port (use http:// or the HTTPS port) ({reason})"
                )
            return f"TLS failed: {reason or e}"
        e = e.__cause__ or e.__context__
    return None
