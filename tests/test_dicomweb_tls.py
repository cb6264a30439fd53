"""TLS verification of a DICOMweb source is on by default: a server whose certificate the
client cannot verify is refused with a typed error, and the same server is accepted when the
caller trusts its certificate (``verify=<CA bundle>``) or turns verification off
(``verify=False``). The server is a minimal HTTPS QIDO-RS endpoint on 127.0.0.1 answering an
empty result, with a self-signed certificate made by the openssl command line tool."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading

import pytest

import dicomml
from dicomml.errors import DicomWebError
from dicomml.web import DicomWebSource

pytest.importorskip("dicomweb_client")


class _EmptyQido(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line tool is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EmptyQido)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/dicom-web", cert
    server.shutdown()
    server.server_close()


def _scan(url, tmp_path, **options):
    source = DicomWebSource(url, retries=0, progress=False, store=tmp_path / "store",
                            **options)
    return dicomml.scan(source, progress=False)


def test_an_unverifiable_certificate_is_refused_by_default(https_server, tmp_path):
    url, _ = https_server
    assert DicomWebSource(url, store=tmp_path).verify is True
    with pytest.raises(DicomWebError) as info:
        _scan(url, tmp_path)
    assert "127.0.0.1" in str(info.value)


def test_a_trusted_certificate_or_verification_off_is_accepted(https_server, tmp_path,
                                                              monkeypatch):
    """Also where ``$REQUESTS_CA_BUNDLE`` names the system bundle, which requests would
    otherwise put over a session's own ``verify``."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    url, cert = https_server
    assert _scan(url, tmp_path, verify=str(cert)).series.empty
    assert _scan(url, tmp_path, verify=False).series.empty
