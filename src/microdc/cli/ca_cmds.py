"""CLI of the fleet's private CA: `microdc ca init | issue | server | pin` (docs/security.md).

`register(app)` adds them to the main typer app (called by microdc.cli.main).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ca_app = typer.Typer(help="Mint the fleet's private CA, site and server certificates.", no_args_is_help=True)
CaDirOpt = Annotated[Path, typer.Option("--ca", help="CA directory made by `microdc ca init`")]
KeyTypeOpt = Annotated[str, typer.Option("--key-type", help="ec (P-256) or ed25519")]


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _key_type(kind: str) -> str:
    if kind not in ("ec", "ed25519"):
        _fail(f"--key-type: expected ec or ed25519, got {kind!r}")
    return kind


@ca_app.command("init")
def ca_init(
    directory: Annotated[Path, typer.Argument(help="new CA directory (ca.pem, ca.key 0600)")],
    name: Annotated[str, typer.Option(help="the CA's common name")] = "microdc fleet CA",
    days: Annotated[int, typer.Option(min=1, max=36500, help="validity of the CA certificate")] = 3650,
    key_type: KeyTypeOpt = "ec",
) -> None:
    """Create a private CA for the fleet (keep ca.key offline or on the control plane only)."""
    from microdc.protocol import pki

    try:
        ca = pki.init_ca(directory, name, days=days, key_type=_key_type(key_type))  # type: ignore[arg-type]
    except pki.PkiError as e:
        _fail(str(e))
        return
    typer.echo(f"CA {name!r} in {directory} (valid until {ca.cert.not_valid_after_utc:%Y-%m-%d})")
    typer.echo(f"agents trust it with   tls: {{ca_file: {directory / pki.CA_CERT}}}")


@ca_app.command("issue")
def ca_issue(
    site: Annotated[str, typer.Argument(help="site id the client certificate speaks for")],
    ca: CaDirOpt,
    out: Annotated[Path, typer.Option("--out", help="where SITE.pem (and SITE.key) go")] = Path("."),
    csr: Annotated[
        Path | None, typer.Option("--csr", help="sign this CSR (the key stays where it was made)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="validity")] = 365,
    key_type: KeyTypeOpt = "ec",
) -> None:
    """Issue a site's TLS client certificate (CN and SAN urn:microdc:site:SITE)."""
    from microdc.protocol import pki

    try:
        authority = pki.Ca.load(ca)
        key = None
        request = None
        if csr is not None:
            request = pki.load_csr(csr.read_bytes() if csr.is_file() else b"", str(csr))
        else:
            key = pki.new_key(_key_type(key_type))  # type: ignore[arg-type]
        cert = pki.issue_site(authority, site, csr=request, key=key, days=days)
        if key is not None:
            pki.write_private(out / f"{site}.key", pki.key_pem(key))
        pki.write_public(out / f"{site}.pem", pki.cert_pem(cert))
    except pki.PkiError as e:
        _fail(str(e))
        return
    typer.echo(f"site certificate {out / (site + '.pem')} (valid until {cert.not_valid_after_utc:%Y-%m-%d})")
    if key is not None:
        typer.echo(f"private key {out / (site + '.key')} (0600): copy it to the site, then delete it here")


@ca_app.command("server")
def ca_server(
    names: Annotated[list[str], typer.Argument(help="host names / IP addresses of the control plane")],
    ca: CaDirOpt,
    out: Annotated[Path, typer.Option("--out", help="where server.pem and server.key go")] = Path("."),
    days: Annotated[int, typer.Option(min=1, max=825, help="validity")] = 398,
    key_type: KeyTypeOpt = "ec",
) -> None:
    """Issue the control plane's TLS server certificate (for `serve --tls-cert/--tls-key`)."""
    from microdc.protocol import pki

    try:
        authority = pki.Ca.load(ca)
        key = pki.new_key(_key_type(key_type))  # type: ignore[arg-type]
        cert = pki.issue_server(authority, names, key, days=days)
        pki.write_private(out / "server.key", pki.key_pem(key))
        pki.write_public(out / "server.pem", pki.cert_pem(cert))
    except pki.PkiError as e:
        _fail(str(e))
        return
    spki, whole = pki.pins_of(cert)
    typer.echo(f"server certificate {out / 'server.pem'} for {', '.join(names)}; key {out / 'server.key'}")
    typer.echo(f"pins for agent.yaml: {spki} (key) or {whole} (this certificate)")


@ca_app.command("pin")
def ca_pin(cert: Annotated[Path, typer.Argument(help="PEM certificate")]) -> None:
    """Print a certificate's pins for agent.yaml `tls.pins` (SPKI first: survives renewal, same key)."""
    from microdc.protocol import pki

    try:
        c = pki.load_cert(cert)
    except pki.PkiError as e:
        _fail(str(e))
        return
    for pin in pki.pins_of(c):
        typer.echo(str(pin))


def register(app: typer.Typer) -> None:
    """Add `ca init|issue|server|pin` to the main CLI."""
    app.add_typer(ca_app, name="ca")
