"""`workbench serve --tls`: the self-signed lab certificate (made, reused, renewed), the CLI's TLS options, and an
ingest that serves HTTPS which a client trusting only that certificate verifies by IP address."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509

from tests.conftest import free_port
from workbench import cli
from workbench.ingest import tls
from workbench.ingest.server import start_ingest
from workbench.ingest.settings import IngestSettings
from workbench.store.recordings import Recordings


def test_lab_certificate_is_made_reused_and_renewed(tmp_path: Path) -> None:
    folder = tmp_path / "tls"
    first = tls.ensure_lab_certificate(folder, ("10.0.0.5", "lab-pc", "127.0.0.1"))
    assert first.created and first.cert.is_file() and first.key.is_file()
    assert stat.S_IMODE(first.key.stat().st_mode) == 0o600, "the private key is readable by its owner only"
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["lab-pc"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=364) < lifetime <= dt.timedelta(days=398), "within Apple's limit for TLS certificates"

    again = tls.ensure_lab_certificate(folder, ("10.0.0.5",))
    assert not again.created and again.sha256 == first.sha256, "a certificate covering the names is reused"

    wider = tls.ensure_lab_certificate(folder, ("192.168.1.20",))
    assert wider.created and wider.sha256 != first.sha256
    assert set(wider.names) >= {"192.168.1.20", "10.0.0.5", "lab-pc", "127.0.0.1"}, "old names are kept"

    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=tls.VALIDITY_DAYS - tls.RENEW_BEFORE_DAYS + 1)
    renewed = tls.ensure_lab_certificate(folder, ("10.0.0.5",), now=later)
    assert renewed.created and renewed.sha256 != wider.sha256, "a certificate about to expire is replaced"

    (folder / tls.CERT_NAME).write_text("garbage")
    assert tls.ensure_lab_certificate(folder, ("10.0.0.5",)).created, "an unreadable certificate is replaced"
    with pytest.raises(ValueError, match="at least one"):
        tls.ensure_lab_certificate(folder, ())


def test_lab_names_replace_a_wildcard_host() -> None:
    names = tls.lab_names("0.0.0.0", "lab.example")
    assert "0.0.0.0" not in names and "lab.example" in names and names[-2:] == ("localhost", "127.0.0.1")
    assert tls.lab_names("127.0.0.1") == ("127.0.0.1", "localhost")


def test_cli_tls_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "--tls", "--host", "0.0.0.0", "--public-url", "https://10.1.2.3:8443"])
    settings = cli._settings(args)
    assert settings.tls_cert == tmp_path / "cache" / "workbench112" / "tls" / tls.CERT_NAME
    assert settings.tls_key is not None and settings.tls_key.is_file()
    assert settings.base_url == "https://10.1.2.3:8443"
    out = capsys.readouterr().out
    assert "Created a self-signed lab certificate" in out and "10.1.2.3" in out and "SHA-256 fingerprint" in out
    assert "https://10.1.2.3:8443/lab-cert.crt" in out and "Certificate Trust Settings" in out

    cli._settings(args)
    assert "Using a self-signed lab certificate" in capsys.readouterr().out, "the second start reuses it"

    with pytest.raises(SystemExit, match="both --cert FILE and --key FILE"):
        cli._settings(parser.parse_args(["serve", "--tls", "--cert", str(settings.tls_cert)]))
    with pytest.raises(SystemExit, match="file not found: c.pem"):
        cli._settings(parser.parse_args(["serve", "--tls", "--cert", "c.pem", "--key", "k.pem"]))
    given = ["--cert", str(settings.tls_cert), "--key", str(settings.tls_key)]
    supplied = cli._settings(parser.parse_args(["serve", "--tls", *given]))
    assert (supplied.tls_cert, supplied.tls_key) == (settings.tls_cert, settings.tls_key)
    with pytest.raises(SystemExit, match="ICE mode 'stun' needs"):
        cli._settings(parser.parse_args(["serve", "--ice", "stun"]))
    plain = cli._settings(parser.parse_args(["serve", "--cert", "c.pem", "--key", "k.pem"]))
    assert plain.tls_cert is None and plain.base_url.startswith("http://")


def test_ingest_serves_https_verified_by_ip(tmp_path: Path) -> None:
    lab = tls.ensure_lab_certificate(tmp_path / "tls", tls.lab_names("127.0.0.1"))

    async def main() -> None:
        root = tmp_path / "rec"
        settings = IngestSettings(port=free_port(), recordings=root, tls_cert=lab.cert, tls_key=lab.key)
        handle = await start_ingest(settings, Recordings(root))
        try:
            assert handle.url.startswith("https://127.0.0.1:")
            trusting = ssl.create_default_context(cafile=str(lab.cert))  # verifies the chain and the IP SAN
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.get(handle.url + "/healthz", ssl=trusting) as resp:
                    assert resp.status == 200
                async with http.post(handle.url + "/api/calls", ssl=trusting) as resp:
                    call = await resp.json()
                assert call["caller_url"].startswith(handle.url + "/c/")
                async with http.get(call["caller_url"], ssl=trusting) as resp:
                    assert resp.status == 200
                    assert "Secure" in resp.headers["Set-Cookie"], "the link cookie is HTTPS-only under TLS"
                async with http.get(handle.url + "/lab-cert.crt", ssl=trusting) as resp:
                    assert resp.status == 200 and resp.content_type == "application/x-x509-ca-cert"
                    assert await resp.read() == lab.cert.read_bytes()
                with pytest.raises(aiohttp.ClientConnectorCertificateError):
                    async with http.get(handle.url + "/healthz", ssl=ssl.create_default_context()):
                        pass
        finally:
            await handle.stop()

    asyncio.run(main())
