"""A site credential counts only with its own site's client certificate (mutual TLS binding).

A bearer token alone is a secret that can be copied; a client certificate's key can be kept in a TPM or at
least on one disk. When an agent connects with a certificate (verified by the TLS layer against
``tls_client_ca``), the site that certificate names must be the site of the credential it presents:
otherwise a compromised site could replay a stolen credential of another site through its own TLS
identity. With ``site_cert_required`` a site credential without any client certificate is refused too.
"""

from __future__ import annotations

from dataclasses import dataclass

from microdc.protocol.pki import site_of_pem

RULE_CERT_OTHER_SITE = "client-cert-other-site"
RULE_CERT_REQUIRED = "site-cert-required"


@dataclass(frozen=True)
class CertRefusal:
    rule: str
    message: str


def check_site_certificate(site_id: str, cert_pem: str | None, *, required: bool) -> CertRefusal | None:
    """Why a site credential of `site_id` must be refused over this connection, or None if it may pass."""
    if cert_pem is None:
        if required:
            return CertRefusal(
                RULE_CERT_REQUIRED,
                f"{RULE_CERT_REQUIRED}: site credentials are accepted only over mutual TLS with the "
                f"site's client certificate; site {site_id!r} connected without one",
            )
        return None
    cert_site = site_of_pem(cert_pem)
    if cert_site != site_id:
        return CertRefusal(
            RULE_CERT_OTHER_SITE,
            f"{RULE_CERT_OTHER_SITE}: the TLS client certificate belongs to site {cert_site!r}, "
            f"the credential to site {site_id!r}",
        )
    return None
