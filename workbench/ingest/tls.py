"""A self-signed lab certificate for ``workbench serve --tls`` without ``--cert``/``--key``.

Phone browsers give a page the camera only in a secure context (HTTPS, or http://localhost), so a lab whose phones
reach the ingest at ``https://10.0.0.5:8080`` needs a certificate for that address. Lab networks have no public
name, so no public CA can issue one: the workbench makes its own, once, and reuses it while it still covers the
requested names and has at least :data:`RENEW_BEFORE_DAYS` to run.

The certificate is its own CA (``basicConstraints CA:TRUE``, key usage ``keyCertSign``), because iOS only offers
"full trust" (Settings > General > About > Certificate Trust Settings) for an installed root, and Chrome on Android
trusts a user-installed CA certificate. Validity is :data:`VALIDITY_DAYS` (below Apple's 398-day limit for TLS
server certificates). Key: ECDSA P-256 (every phone browser supports it), written with mode 0600.

Sources: RFC 5280 (SAN, basic constraints, key usage); Apple, "About trusted root certificates" and "Requirements
for trusted certificates in iOS 13 and macOS 10.15" (support.apple.com/en-us/103769); the ``cryptography`` x509
tutorial (cryptography.io/en/latest/x509/tutorial/).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

VALIDITY_DAYS = 365
"""Lifetime of a generated lab certificate, days."""
RENEW_BEFORE_DAYS = 14
"""A stored certificate with less than this many days left is replaced, days."""
CERT_NAME = "lab-cert.pem"
KEY_NAME = "lab-key.pem"


@dataclass(frozen=True)
class LabCertificate:
    """Paths of a lab certificate and its key, the names it covers and whether it was made just now."""

    cert: Path
    key: Path
    names: tuple[str, ...]
    """Subject alternative names (IP addresses and DNS names) the certificate is valid for."""
    created: bool
    """True when this call generated it (False: an existing one was reused)."""
    sha256: str
    """SHA-256 fingerprint of the certificate (hex, colon-separated), to compare on the phone."""


def default_tls_dir() -> Path:
    """``$XDG_CACHE_HOME/workbench112/tls`` (``~/.cache/workbench112/tls`` by default): outside the repository and
    the recordings, so a private key is never committed or shared with a data set."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "workbench112" / "tls"


def lab_names(*hosts: str) -> tuple[str, ...]:
    """The names a lab certificate should cover: the given hosts (an empty or wildcard ``0.0.0.0``/``::`` host
    is replaced by this machine's name and outgoing-interface address), plus ``localhost`` and ``127.0.0.1``.
    Never sends a packet (a UDP ``connect`` only picks the route)."""
    names: list[str] = []
    for host in hosts:
        if host in ("", "0.0.0.0", "::"):
            names.append(socket.gethostname())
            names.extend(_outgoing_addresses())
        else:
            names.append(host)
    names.extend(["localhost", "127.0.0.1"])
    result: list[str] = []
    for name in names:
        if name and name not in result:
            result.append(name)
    return tuple(result)


def _outgoing_addresses() -> list[str]:
    found = []
    for target in ("10.255.255.255", "192.168.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))  # UDP connect: no packet leaves, only the route is chosen
                address = s.getsockname()[0]
        except OSError:
            continue
        if address not in found and not address.startswith("127."):
            found.append(address)
    return found


def ensure_lab_certificate(folder: Path, names: tuple[str, ...], *, now: dt.datetime | None = None) -> LabCertificate:
    """The lab certificate in ``folder`` covering every name in ``names``, generated when missing, expiring within
    :data:`RENEW_BEFORE_DAYS`, or lacking one of the names (the new one covers the old names too).

    Raises ``ValueError`` when ``names`` is empty, ``OSError`` when the folder cannot be written.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise ValueError("a lab certificate needs at least one host name or IP address")
    now = now or dt.datetime.now(dt.timezone.utc)
    cert_path, key_path = folder / CERT_NAME, folder / KEY_NAME
    wanted = list(names)
    if cert_path.is_file() and key_path.is_file():
        try:
            existing = x509.load_pem_x509_certificate(cert_path.read_bytes())
            covered = _san_names(existing)
            fresh = existing.not_valid_after_utc - now > dt.timedelta(days=RENEW_BEFORE_DAYS)
            if fresh and all(n in covered for n in names):
                return LabCertificate(cert_path, key_path, tuple(covered), False, _fingerprint(existing))
            wanted += [n for n in covered if n not in wanted]
        except (ValueError, x509.ExtensionNotFound):
            pass  # unreadable or without SAN: replace it
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "112 workbench lab (self-signed)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"112 workbench lab {wanted[0]}"),
        ]
    )
    alt: list[x509.GeneralName] = []
    for name in wanted:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return LabCertificate(cert_path, key_path, tuple(_san_names(cert)), True, _fingerprint(cert))


def _san_names(cert: object) -> list[str]:
    from cryptography import x509

    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value  # type: ignore[attr-defined]
    return [str(n.value) for n in san]


def _fingerprint(cert: object) -> str:
    from cryptography.hazmat.primitives import hashes

    digest = cert.fingerprint(hashes.SHA256())  # type: ignore[attr-defined]
    return ":".join(f"{b:02X}" for b in digest)


def trust_instructions(lab: LabCertificate, base_url: str) -> str:
    """What to tell the person setting up the phones (printed by ``workbench serve --tls``)."""
    state = "Created" if lab.created else "Using"
    from urllib.parse import urlsplit

    local = urlsplit(base_url).hostname in ("127.0.0.1", "localhost", "::1")
    hint = (
        ["Note: phones cannot reach 127.0.0.1; start with --host 0.0.0.0 --public-url https://<this machine's LAN "
         "address>:<port>."]
        if local
        else []
    )
    return "\n".join(
        hint
        + [
            f"{state} a self-signed lab certificate: {lab.cert}",
            f"  valid for: {', '.join(lab.names)}",
            f"  SHA-256 fingerprint: {lab.sha256}",
            "Phones only allow the camera over HTTPS. Either accept the warning once per phone browser (open a",
            "caller link, tap 'Advanced' / 'Show details', then proceed), or trust the certificate so that no",
            "warning appears:",
            f"  Android (Chrome): open {base_url}/lab-cert.crt, or copy the file to the phone; Settings > Security >",
            "    Encryption & credentials > Install a certificate > CA certificate; pick the file.",
            f"  iPhone/iPad (Safari): open {base_url}/lab-cert.crt, allow the download; Settings > Profile Downloaded",
            "    > Install; then Settings > General > About > Certificate Trust Settings > switch it on.",
            "  Compare the SHA-256 fingerprint the phone shows with the one above. Remove the certificate from the",
            "  phones when the study ends.",
        ]
    )
