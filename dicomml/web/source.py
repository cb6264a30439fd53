"""``DicomWebSource``: one DICOMweb server, its credentials, and every request made to it.

Requests go through the maintained ``dicomweb-client`` (extra ``web``), one client per thread,
with dicomml's own retry policy: connection errors, timeouts, 429 and 5xx answers, truncated
bodies and wrong content types are retried with exponential backoff (``backoff_s * 2**k``
seconds, at most ``max_backoff_s``; a ``Retry-After`` header wins when it says longer), at
most ``retries`` times; then a typed :class:`~dicomml.errors.DicomWebError` naming the URL.
401 / 403 raise :class:`~dicomml.errors.DicomWebAuthError` at once.

Credentials (``auth=(user, password)``, ``token=``, or ``user:password@`` in the URL) stay in
this object's memory: the URL it shows (``url``), errors, catalogs and the store never hold
them, and ``repr`` hides them. Sources register themselves by URL (:func:`source_for`), so
that catalog rows, which carry only the instance URL, find their server again in this process
and in forked DataLoader workers.

Example
-------
>>> src = DicomWebSource("http://user:pw@127.0.0.1:8042/dicom-web/", progress=False)
>>> src.url, src                                # no password anywhere
('http://127.0.0.1:8042/dicom-web', DicomWebSource('http://127.0.0.1:8042/dicom-web', auth=***))
>>> src.instance_url("1.2", "1.2.3", "1.2.3.4")
'http://127.0.0.1:8042/dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.4'
"""

from __future__ import annotations

import email.utils
import os
import threading
import time
import urllib.parse

from dicomml._columns import is_url
from dicomml.errors import (
    DicomWebAuthError,
    DicomWebError,
    DicomWebResponseError,
    DicomWebUnavailableError,
)

#: statuses worth another try (PS3.18 and RFC 9110: overload and transient server trouble)
RETRIED_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_REGISTRY: dict[str, DicomWebSource] = {}
_REGISTRY_LOCK = threading.Lock()


def _split_credentials(url: str):
    """``(url without user:password@ and trailing /, (user, password) or None)``."""
    parts = urllib.parse.urlsplit(url.strip())
    auth = None
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        auth = (urllib.parse.unquote(user), urllib.parse.unquote(password))
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"),
                                     parts.query, ""))
    return clean, auth


class DicomWebSource:
    """A DICOMweb server (QIDO-RS, WADO-RS) at ``url`` (the service root, e.g.
    ``http://host:8042/dicom-web``).

    ``auth``: ``(user, password)`` for HTTP basic; ``token``: a bearer token; ``headers``:
    more request headers (e.g. an API key); ``verify``: TLS verification (on by default; a CA
    bundle path also works). ``timeout``: seconds to connect and between bytes read;
    ``concurrency``: requests in flight at most when fetching instances (per process: each
    DataLoader worker has its own); ``retries``,
    ``backoff_s``, ``max_backoff_s``: the retry budget (see the module docstring).
    ``store``: folder of the local instance store (default ``$DICOMML_WEB_STORE``, else
    ``~/.cache/dicomml/web``); ``transfer_syntax``: ``"*"`` asks for what the server holds,
    else a Transfer Syntax UID; if the server cannot send that, Explicit VR Little Endian.
    ``page_size``: QIDO ``limit`` per request. ``progress``: tqdm bars. Answers are asked
    for uncompressed (``Accept-Encoding: identity``; ``headers={"Accept-Encoding": "gzip"}``
    for a slow network and a fast server).
    """

    is_dicomweb = True  # what dicomml.scan looks for

    def __init__(self, url: str, *, auth: tuple[str, str] | None = None,
                 token: str | None = None, headers: dict | None = None, verify=True,
                 timeout: float = 30.0, concurrency: int = 4, retries: int = 5,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, store=None,
                 transfer_syntax: str = "*", page_size: int = 1000, progress: bool = True):
        self.url, url_auth = _split_credentials(url)
        if not is_url(self.url):
            raise ValueError(f"not an http(s) URL: {self.url!r}")
        self._auth = auth or url_auth
        self._token = token
        self._headers = dict(headers or {})
        self.verify, self.timeout = verify, timeout
        self.concurrency, self.retries = max(1, int(concurrency)), max(0, int(retries))
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.store = os.path.abspath(os.fspath(store)) if store is not None else \
            os.environ.get("DICOMML_WEB_STORE") or \
            os.path.join(os.path.expanduser("~"), ".cache", "dicomml", "web")
        self.transfer_syntax, self.page_size, self.progress = transfer_syntax, page_size, progress
        self._local = threading.local()
        register(self)

    def __repr__(self) -> str:
        hidden = ", auth=***" if self._auth or self._token or self._headers else ""
        return f"DicomWebSource({self.url!r}{hidden})"

    def __getstate__(self) -> dict:  # to DataLoader workers: no live sessions
        state = dict(self.__dict__)
        state.pop("_local")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        register(self)

    # --- URLs ----------------------------------------------------------------------------
    def instance_url(self, study: str, series: str, instance: str) -> str:
        """The WADO-RS URL of one instance (what catalog rows carry as ``path``)."""
        return f"{self.url}/studies/{study}/series/{series}/instances/{instance}"

    def uids_of(self, url: str) -> tuple[str, str, str]:
        """``(study, series, instance)`` UIDs of an :meth:`instance_url`."""
        parts = url[len(self.url):].strip("/").split("/")
        if len(parts) != 6 or parts[0::2] != ["studies", "series", "instances"]:
            raise DicomWebError("not an instance URL of this server", path=url)
        return parts[1], parts[3], parts[5]

    # --- the client ----------------------------------------------------------------------
    def client(self):
        """This thread's ``dicomweb_client.DICOMwebClient`` (created on first use, and anew
        in a forked process: a DataLoader worker must not share its parent's connections)."""
        client = getattr(self._local, "client", None)
        if client is None or self._local.pid != os.getpid():
            client = self._local.client = self._new_client()
            self._local.pid = os.getpid()
        return client

    def _new_client(self):
        from dicomml._optional import require

        web = require("dicomweb_client", extra="web", needed_by="dicomml.web")
        import requests

        session = _session_class(requests)()
        session.verify = self.verify
        if self._auth:
            session.auth = tuple(self._auth)
        # uncompressed answers unless asked otherwise: Orthanc's gzip of a 512x512 instance
        # costs ~13x the transfer on loopback (bench_dicomweb.py), pixels barely compress
        session.headers["Accept-Encoding"] = "identity"
        headers = dict(self._headers)
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        client = web.DICOMwebClient(self.url, session=session, headers=headers or None,
                                    timeout=(min(10.0, self.timeout), self.timeout))
        client.set_http_retry_params(retry=False)  # ours honour Retry-After
        return client

    def call(self, what: str, url: str, action):
        """``action(client)`` with the retry policy; ``url`` names the resource in errors,
        ``what`` the request (e.g. ``"QIDO series"``)."""
        attempt = 0
        while True:
            try:
                return action(self.client())
            except Exception as exc:  # noqa: BLE001 - sorted into typed errors just below
                error, wait = self._classify(exc, what, url, attempt)
                if error is exc:
                    raise
                if error is not None:
                    raise error from exc
            attempt += 1
            time.sleep(wait)

    def _classify(self, exc: Exception, what: str, url: str, attempt: int):
        """``(error to raise, None)`` or ``(None, seconds to wait)`` for one failure."""
        import requests

        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(exc, DicomWebError) and not isinstance(exc, DicomWebResponseError):
            return exc, None
        if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
            return exc, None  # the local store (disk full, permissions): not the server's
        if status in (401, 403):
            return DicomWebAuthError(
                f"{what}: the server refused the credentials (HTTP {status}); check the user, "
                f"password or token", path=url, status=status), None
        if status is not None and status not in RETRIED_STATUS:
            return DicomWebError(f"{what}: HTTP {status} {getattr(response, 'reason', '')}",
                                 path=url, status=status), None
        malformed = (DicomWebResponseError, ValueError, EOFError,
                     requests.exceptions.ChunkedEncodingError,  # a body cut short
                     requests.exceptions.ContentDecodingError)
        transient = status is not None or isinstance(exc, (
            requests.ConnectionError, requests.Timeout, *malformed))
        if not transient:
            return DicomWebError(f"{what}: {type(exc).__name__}: {exc}", path=url), None
        if attempt >= self.retries:
            cause = f"HTTP {status}" if status is not None else f"{type(exc).__name__}: {exc}"
            kind = DicomWebResponseError if isinstance(exc, malformed) and status is None \
                else DicomWebUnavailableError
            return kind(f"{what}: no usable answer after {attempt + 1} attempt(s) (last: "
                        f"{_redact(cause)})", path=url, status=status), None
        wait = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        return None, max(wait, retry_after(response))


def retry_after(response) -> float:
    """Seconds a response's ``Retry-After`` header asks to wait (delay or HTTP date); 0."""
    value = None if response is None else response.headers.get("Retry-After")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return 0.0
        return max(0.0, when - time.time())


def _redact(text: str) -> str:
    """``text`` with any ``scheme://user:password@`` credentials masked."""
    import re

    return re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)


def register(source: DicomWebSource) -> None:
    """Make ``source`` the server of every URL under ``source.url`` (latest wins)."""
    with _REGISTRY_LOCK:
        _REGISTRY[source.url] = source


def source_for(url: str) -> DicomWebSource:
    """The registered :class:`DicomWebSource` whose ``url`` is the longest prefix of ``url``;
    a :class:`~dicomml.errors.DicomWebError` when none is (e.g. a catalog saved in another
    session: create ``DicomWebSource(url, auth=...)`` first, or pass it to ``scan``)."""
    with _REGISTRY_LOCK:
        found = [s for base, s in _REGISTRY.items() if url.startswith(base + "/")]
    if not found:
        raise DicomWebError("no DicomWebSource for this URL in this process: create "
                            "dicomml.web.DicomWebSource(<server URL>, auth=...) first", path=url)
    return max(found, key=lambda s: len(s.url))


def sources_serving(urls) -> tuple[DicomWebSource, ...]:
    """The registered sources under which any of ``urls`` (strings) lies: what a dataset keeps
    so that, pickled into spawned DataLoader workers, it brings its servers along (unpickling
    a source registers it there)."""
    urls = [u for u in urls if isinstance(u, str)]
    with _REGISTRY_LOCK:
        sources = list(_REGISTRY.items())
    return tuple(source for base, source in sources
                 if any(u.startswith(base + "/") for u in urls))


def _session_class(requests):
    """A ``requests.Session`` whose own ``verify`` holds for every request. A plain session's
    ``verify=False`` or CA bundle is replaced by ``$REQUESTS_CA_BUNDLE`` / ``$CURL_CA_BUNDLE``
    when either is set (requests merges the environment over session settings), so a source's
    ``verify=`` was silently ignored on such machines."""

    class VerifyingSession(requests.Session):
        def request(self, method, url, **kwargs):
            kwargs.setdefault("verify", self.verify)
            return super().request(method, url, **kwargs)

    return VerifyingSession
