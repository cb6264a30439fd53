"""A real Orthanc server (with its DICOMweb plugin) for the tests, on 127.0.0.1 only.

Orthanc 1.10 cannot bind to the loopback interface alone, so it runs in a private network
namespace where only ``lo`` exists, with ``RemoteAccessAllowed`` and the DICOM server off.
The test process reaches it through a relay: :class:`Orthanc` opens a listening socket on the
host's 127.0.0.1:<free port>, then starts this file as a launcher that inherits the socket,
enters a new network namespace (``unshare(CLONE_NEWNET)``), brings ``lo`` up, starts Orthanc
there and copies each connection accepted on the host socket to the namespace's
127.0.0.1:8042. The launcher reads commands on stdin (``stop``: Orthanc stopped, connections
are then closed at once; ``start``: started again on the same storage; ``quit``), and dies
with the test process (``PR_SET_PDEATHSIG``), as Orthanc dies with the launcher.

Also :class:`FaultProxy`, an HTTP proxy on 127.0.0.1 that injects faults (slow responses, 429
with Retry-After, 503, truncated bodies, a wrong content type) into the responses it relays.

Example
-------
>>> with Orthanc(tmp_folder) as server:                    # doctest: +SKIP
...     server.upload([path_of_a_dicom_file])
...     server.dicomweb_url, server.auth
"""

from __future__ import annotations

import base64
import ctypes
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
INNER_PORT = 8042
USER, PASSWORD = "dicomml-test", "s3cret-test-pw"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1


def available() -> str | None:
    """None when Orthanc and its DICOMweb plugin are installed, else what is missing."""
    missing = [p for p in (ORTHANC, PLUGIN) if not os.path.exists(p)]
    return ", ".join(missing) + " not installed" if missing else None


def _config(folder: str) -> dict:
    return {
        "Name": "dicomml-test", "StorageDirectory": os.path.join(folder, "storage"),
        "IndexDirectory": os.path.join(folder, "storage"), "HttpPort": INNER_PORT,
        "HttpServerEnabled": True, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
        "Plugins": [PLUGIN], "HttpThreadsCount": 16, "StorageCompression": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                     "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
    }


class Orthanc:
    """Orthanc in a private network namespace, reached on 127.0.0.1:``port`` of the host.

    ``folder``: where its storage, configuration and log go (a temporary folder).
    """

    def __init__(self, folder: str, start_timeout: float = 30.0):
        self.folder, self.start_timeout = folder, start_timeout
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb_url = self.url + "/dicom-web"
        self.auth = (USER, PASSWORD)
        self.process = None

    def __enter__(self) -> Orthanc:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the launcher (and Orthanc); wait until the REST API answers."""
        os.makedirs(os.path.join(self.folder, "storage"), exist_ok=True)
        config = os.path.join(self.folder, "orthanc.json")
        with open(config, "w") as f:
            json.dump(_config(self.folder), f)
        log = open(os.path.join(self.folder, "launcher.log"), "ab")
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), str(self.listener.fileno()), config],
            stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=[self.listener.fileno()],
            preexec_fn=_die_with_parent)
        log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc launcher exited: {self.log_tail()}")
            try:
                self.get("/system")
                return
            except (OSError, http.client.HTTPException, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {self.start_timeout} s: "
                           f"{self.log_tail()}")

    def log_tail(self) -> str:
        text = ""
        for name in ("launcher.log", "orthanc.log"):
            path = os.path.join(self.folder, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text += f"[{name}] " + f.read()[-2000:]
        return text

    def command(self, word: str, wait: bool = True) -> None:
        """``stop`` or ``start`` Orthanc behind the same port (storage kept)."""
        self.process.stdin.write(word.encode() + b"\n")
        self.process.stdin.flush()
        if word == "start" and wait:
            self.wait_ready()
        elif word == "stop" and wait:  # the relay refuses connections from then on
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline:
                try:
                    self.get("/system")
                except (OSError, http.client.HTTPException, urllib.error.URLError):
                    return
                time.sleep(0.05)
            raise RuntimeError("Orthanc still answers after 'stop'")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.command("quit")
                self.process.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdin:
            self.process.stdin.close()
        self.listener.close()

    def _request(self, method: str, path: str, body: bytes | None = None):
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(self.url + path, data=body, method=method,
                                         headers={"Authorization": "Basic " + token})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def get(self, path: str):
        return self._request("GET", path)

    def upload(self, paths) -> int:
        """POST each file to /instances (Orthanc's REST API); the number stored."""
        count = 0
        for path in paths:
            with open(path, "rb") as f:
                self._request("POST", "/instances", f.read())
            count += 1
        return count


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# --- the launcher (runs as its own process) ----------------------------------------------
def _enter_private_network() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between two sockets until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 60)
            if not ready:
                continue
            for src in ready:
                data = src.recv(1 << 16)
                if not data:
                    return
                (b if src is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def _relay(listener: socket.socket, running: threading.Event) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        if not running.is_set():
            client.close()
            continue
        try:
            inner = socket.create_connection(("127.0.0.1", INNER_PORT), timeout=5)
            inner.settimeout(None)
        except OSError:
            client.close()
            continue
        threading.Thread(target=_pump, args=(client, inner), daemon=True).start()


def _start_orthanc(config: str):
    folder = os.path.dirname(config)
    log = open(os.path.join(folder, "orthanc.log"), "ab")
    process = subprocess.Popen([ORTHANC, config], stdout=log, stderr=log,
                               preexec_fn=_die_with_parent)
    log.close()
    return process


def _stop_orthanc(process) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _launcher(fd: int, config: str) -> None:
    listener = socket.socket(fileno=fd)
    _enter_private_network()
    running = threading.Event()
    orthanc = _start_orthanc(config)
    running.set()
    threading.Thread(target=_relay, args=(listener, running), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for line in sys.stdin:
            word = line.strip()
            if word == "stop":
                running.clear()
                _stop_orthanc(orthanc)
            elif word == "start":
                _stop_orthanc(orthanc)
                orthanc = _start_orthanc(config)
                running.set()
            elif word == "quit":
                break
    finally:
        running.clear()
        _stop_orthanc(orthanc)


# --- a fault-injecting proxy ---------------------------------------------------------------
class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1:``port`` in front of ``target`` (``http://host:port``)
    that spoils responses on purpose. ``faults``: a list consumed one per request, each one of
    ``None`` (relay as is), ``"slow"`` (wait ``slow_s`` before answering), ``"429"`` (Too Many
    Requests with ``Retry-After: retry_after``), ``"503"``, ``"truncate"`` (half the body, then
    the connection closed), ``"content-type"`` (the body under ``text/html``); when the list is
    empty requests are relayed as is. ``seen`` lists ``(path, fault, monotonic time)`` of each
request received, ``headers`` their headers.
    """

    def __init__(self, target: str, *, slow_s: float = 3.0, retry_after: int = 1):
        import http.server
        import socketserver
        import urllib.parse

        self.target = urllib.parse.urlsplit(target)
        self.faults: list = []
        self.seen: list[tuple[str, str | None, float]] = []
        self.headers: list[dict] = []  # the request headers, in order
        self.slow_s, self.retry_after = slow_s, retry_after
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - the http.server name
                proxy.handle(self)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # a client that hung up (a timeout under test): nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _next_fault(self):
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def handle(self, handler) -> None:
        fault = self._next_fault()
        with self.lock:
            self.seen.append((handler.path, fault, time.monotonic()))
            self.headers.append(dict(handler.headers.items()))
        if fault in ("429", "503"):
            code = int(fault)
            body = b"try later"
            handler.send_response(code)
            if code == 429:
                handler.send_header("Retry-After", str(self.retry_after))
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        status, headers, body = self._forward(handler)
        if fault == "slow":
            time.sleep(self.slow_s)
        handler.send_response(status)
        for name, value in headers:
            low = name.lower()
            if low in ("content-length", "transfer-encoding", "connection", "keep-alive"):
                continue
            if low == "content-type" and fault == "content-type":
                value = "text/html"
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if fault == "truncate":
            handler.wfile.write(body[:len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        handler.wfile.write(body)

    def _forward(self, handler):
        connection = http.client.HTTPConnection(self.target.hostname, self.target.port,
                                                timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            connection.request("GET", handler.path, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


if __name__ == "__main__":
    _launcher(int(sys.argv[1]), sys.argv[2])
