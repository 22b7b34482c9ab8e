"""Sign a site's CSR with the fleet CA at enrollment or rotation (its private key never leaves the site).

The certificate names the site the *credential* belongs to, whatever subject the CSR asks for; the
request is checked (signature, key type, size) before the enrollment token is spent, so a bad CSR costs
the installer nothing but a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.context import Ctx
from microdc.control.problems import ProblemError
from microdc.protocol import pki


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: str
    ca_pem: str


def checked_csr(ca_dir: str | None, csr_pem: str | None) -> x509.CertificateSigningRequest | None:
    """The parsed CSR, or a 422 naming the field and what is wrong (before anything is spent)."""
    if csr_pem is None:
        return None
    if not ca_dir:
        raise ProblemError(
            422,
            "csr: this control plane signs no certificates (start it with --ca-dir, see docs/security.md)",
            slug="csr-not-accepted",
        )
    try:
        csr = pki.load_csr(csr_pem.encode(), "csr")
        pki._public_key(csr.public_key(), "csr")
    except pki.PkiError as e:
        raise ProblemError(422, str(e), slug="bad-csr", title="Bad certificate signing request") from None
    return csr


def sign_for_site(
    session: Session, ctx: Ctx, ca_dir: str, site_id: str, csr: x509.CertificateSigningRequest, days: int
) -> IssuedCert:
    try:
        ca = pki.Ca.load(Path(ca_dir))
    except pki.PkiError as e:
        raise ProblemError(500, f"fleet CA unusable: {e}") from None
    cert = pki.issue_site(ca, site_id, csr=csr, days=days)
    audit.append(
        session,
        actor=ctx.actor,
        action="site.certificate_issue",
        target=f"site:{site_id}",
        client_ip=ctx.client_ip,
        details={
            "serial": format(cert.serial_number, "x"),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "spki_pin": str(pki.pins_of(cert)[0]),
        },
        now=ctx.now,
    )
    return IssuedCert(pki.cert_pem(cert).decode(), pki.cert_pem(ca.cert).decode())
