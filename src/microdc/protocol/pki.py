"""The fleet's private CA: keys, certificates, CSRs and pins (the `cryptography` library).

Both sides speak it: the control plane signs site certificates (``microdc ca``, enrollment with a CSR)
and reads which site a client certificate names; the agent makes its key and CSR and checks pins.

Naming: a site certificate carries the site id as its subject CN *and* as the SAN URI
``urn:microdc:site:<site id>``; `site_of_certificate` trusts the SAN (what a CA put there on purpose)
and falls back to the CN only for certificates without a microdc SAN. Keys are EC P-256 (the default,
what every TLS stack speaks) or Ed25519; private keys are written 0600 and never overwritten silently.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["ec", "ed25519"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
SITE_URI_PREFIX = "urn:microdc:site:"
SITE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
CA_DAYS, SITE_DAYS, SERVER_DAYS = 3650, 365, 398  # 398: the CA/Browser Forum's ceiling for servers
CA_CERT, CA_KEY = "ca.pem", "ca.key"


class PkiError(ValueError):
    """A CA, certificate, key or CSR is missing, malformed or does not fit (the message says which)."""


# --- keys and files -------------------------------------------------------------------------------


def new_key(kind: KeyType = "ec") -> PrivateKey:
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_private(path: Path, data: bytes, *, overwrite: bool = False) -> None:
    """Write a secret with mode 0600 from the first byte (no window in which others may read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise PkiError(f"{path}: already exists; refusing to overwrite a private key") from None
    if overwrite:
        os.fchmod(fd, 0o600)  # O_TRUNC keeps an existing file's mode
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_public(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(f"{path}: private key not found") from None
    except (ValueError, TypeError) as e:
        raise PkiError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise PkiError(f"{path}: expected an EC or Ed25519 key, got {type(key).__name__}")
    return key


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise PkiError(f"{path}: certificate not found") from None
    except ValueError as e:
        raise PkiError(f"{path}: not a PEM certificate ({e})") from None


def load_csr(pem: bytes, where: str = "csr") -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as e:
        raise PkiError(f"{where}: not a PEM certificate signing request ({e})") from None
    if not csr.is_signature_valid:
        raise PkiError(f"{where}: the CSR's signature does not match its public key")
    return csr


# --- the CA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ca:
    cert: x509.Certificate
    key: PrivateKey

    @classmethod
    def load(cls, directory: Path) -> Ca:
        if not (directory / CA_CERT).is_file():
            raise PkiError(f"{directory}: no {CA_CERT} here; create it with `microdc ca init {directory}`")
        cert, key = load_cert(directory / CA_CERT), load_key(directory / CA_KEY)
        if cert.public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
            raise PkiError(f"{directory}: {CA_KEY} is not the key of {CA_CERT}")
        return cls(cert, key)


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _sign_hash(key: PrivateKey) -> hashes.SHA256 | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only",
         "decipher_only"),
        False,
    )  # fmt: skip
    return x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, **flags)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def init_ca(
    directory: Path, name: str = "microdc fleet CA", *, days: int = CA_DAYS, key_type: KeyType = "ec"
) -> Ca:
    """Create a self-signed CA (path length 0: it signs only end-entity certificates) in `directory`."""
    if (directory / CA_KEY).exists() or (directory / CA_CERT).exists():
        raise PkiError(f"{directory}: a CA already exists here; refusing to overwrite it")
    key = new_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _sign_hash(key))
    )
    write_private(directory / CA_KEY, key_pem(key))
    write_public(directory / CA_CERT, cert_pem(cert))
    return Ca(cert, key)


def _leaf(
    ca: Ca,
    public_key: ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    common_name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    start = not_before or (_now() - dt.timedelta(minutes=5))
    end = min(start + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, _sign_hash(ca.key))
    )


def _public_key(key: object, where: str) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1 | ec.SECP384R1):
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise PkiError(f"{where}: key type {type(key).__name__} not accepted; use EC P-256/P-384 or Ed25519")


def check_site_id(site_id: str) -> str:
    if not SITE_ID_RE.match(site_id):
        raise PkiError(f"site id {site_id!r}: expected letters, digits and _.:- (at most 128)")
    return site_id


def issue_site(
    ca: Ca,
    site_id: str,
    *,
    csr: x509.CertificateSigningRequest | None = None,
    key: PrivateKey | None = None,
    days: int = SITE_DAYS,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """A TLS *client* certificate naming `site_id` (CN and SAN URI) for the public key of `csr` or
    `key`. The subject a CSR asks for is ignored: the CA, not the requester, decides whose it is."""
    check_site_id(site_id)
    if csr is not None:
        pub = _public_key(csr.public_key(), "csr")
    elif key is not None:
        pub = _public_key(key.public_key(), "key")
    else:
        raise PkiError("issue_site needs a CSR or a key")
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(SITE_URI_PREFIX + site_id)]
    return _leaf(ca, pub, site_id, sans, ExtendedKeyUsageOID.CLIENT_AUTH, days, not_before)


def issue_server(ca: Ca, names: list[str], key: PrivateKey, *, days: int = SERVER_DAYS) -> x509.Certificate:
    """A TLS *server* certificate for the control plane's host names and IP addresses (SANs)."""
    if not names:
        raise PkiError("a server certificate needs at least one host name or IP address")
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            if not re.match(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", n):
                raise PkiError(f"server name {n!r}: not a DNS name or IP address") from None
            sans.append(x509.DNSName(n))
    pub = _public_key(key.public_key(), "key")
    return _leaf(ca, pub, names[0], sans, ExtendedKeyUsageOID.SERVER_AUTH, days)


def make_csr(key: PrivateKey, site_id: str) -> x509.CertificateSigningRequest:
    check_site_id(site_id)
    return (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, site_id)]))
        .sign(key, _sign_hash(key))
    )


def csr_pem(csr: x509.CertificateSigningRequest) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


# --- reading certificates -------------------------------------------------------------------------


def site_of_certificate(cert: x509.Certificate) -> str | None:
    """The site a client certificate speaks for: its ``urn:microdc:site:`` SAN, else its CN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        values = san.get_values_for_type(x509.UniformResourceIdentifier)
        uris = [u for u in values if u.startswith(SITE_URI_PREFIX)]
    except x509.ExtensionNotFound:
        uris = []
    if uris:
        return uris[0][len(SITE_URI_PREFIX) :] if len(uris) == 1 else None  # two sites: neither
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def site_of_pem(pem: str | bytes) -> str | None:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        return site_of_certificate(x509.load_pem_x509_certificate(data))
    except ValueError:
        return None


def spki_sha256(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_key().public_bytes(*_SPKI)).digest()


def spki_sha256_of_key(key: PrivateKey) -> bytes:
    return hashlib.sha256(key.public_key().public_bytes(*_SPKI)).digest()


def cert_sha256(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


# --- pins -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """A pinned server key or certificate: ``sha256//BASE64`` is the SHA-256 of the SubjectPublicKeyInfo
    (curl's ``--pinnedpubkey`` form, survives renewal with the same key); ``cert-sha256:HEX`` is the
    SHA-256 of the whole certificate (``openssl x509 -fingerprint -sha256``, colons allowed)."""

    kind: Literal["spki", "cert"]
    digest: bytes

    def __str__(self) -> str:
        if self.kind == "spki":
            return "sha256//" + base64.b64encode(self.digest).decode()
        return "cert-sha256:" + self.digest.hex()


def parse_pin(text: str) -> Pin:
    t = text.strip()
    try:
        if t.startswith("sha256//"):
            digest = base64.b64decode(t[len("sha256//") :], validate=True)
            kind: Literal["spki", "cert"] = "spki"
        elif t.lower().startswith("cert-sha256:"):
            digest = bytes.fromhex(t[len("cert-sha256:") :].replace(":", ""))
            kind = "cert"
        else:
            raise ValueError
    except ValueError:
        raise PkiError(
            f"pin {text!r}: expected 'sha256//BASE64' (SPKI, as curl --pinnedpubkey) or "
            "'cert-sha256:HEX' (certificate fingerprint)"
        ) from None
    if len(digest) != 32:
        raise PkiError(f"pin {text!r}: a SHA-256 digest is 32 bytes, this one is {len(digest)}")
    return Pin(kind, digest)


def pin_matches(pins: list[Pin], der: bytes) -> bool:
    cert = x509.load_der_x509_certificate(der)
    spki, whole = spki_sha256(cert), cert_sha256(der)
    return any(p.digest == (spki if p.kind == "spki" else whole) for p in pins)


def pins_of(cert: x509.Certificate) -> tuple[Pin, Pin]:
    """Both pins of a certificate (what `microdc ca pin` prints for agent.yaml)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return Pin("spki", spki_sha256(cert)), Pin("cert", cert_sha256(der))
