"""The retrying GCS filesystem: built without credentials or network (``token="anon"``, ``NO_GCE_CHECK``), its retry
predicate on real gcsfs exceptions, and its retries against a real local HTTP server standing in for GCS. A guard
fails the test if anything but the loopback address is resolved or connected to (the cloud metadata address
169.254.169.254 included)."""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

gcsfs = pytest.importorskip("gcsfs")

import aiohttp.client_exceptions  # noqa: E402  (gcsfs's dependencies)
import google.auth.exceptions  # noqa: E402
import requests.exceptions  # noqa: E402
from gcsfs.retry import ChecksumError, HttpError, NonRetryableError  # noqa: E402

from squirrel_graph.fsspec.custom_gcsfs import CustomGCSFileSystem, custom_retry  # noqa: E402


def _loopback(host) -> bool:
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Only loopback may be resolved or connected to; every other attempt is refused and recorded."""
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    refused: list[str] = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def check(address):
        host = address[0] if isinstance(address, tuple) else None
        if not _loopback(host):
            refused.append(str(address))
            raise OSError(f"test guard: no network access to {address!r}")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        check((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield refused
    assert not refused, f"the test tried to reach the network: {refused}"


def test_constructs_without_credentials_or_network():
    retriable_before = gcsfs.retry.is_retriable
    fs = CustomGCSFileSystem(token="anon", skip_instance_cache=True)
    assert isinstance(fs, gcsfs.GCSFileSystem) and "gs" in fs.protocol
    assert (fs.token, fs.access) == ("anon", "read_write")
    assert fs.credentials.method == "anon"  # the token reaches gcsfs (squirrel-core dropped it)
    assert fs.credentials.scope.endswith("devstorage.read_write")
    assert gcsfs.retry.is_retriable is retriable_before  # nothing patched globally


def test_the_default_token_uses_gcsfs_credential_chain(tmp_path, monkeypatch):
    creds = tmp_path / "adc.json"
    creds.write_text(
        json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"})
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(creds))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    fs = CustomGCSFileSystem(skip_instance_cache=True)
    assert fs.token == "google_default" and fs.credentials.token is None  # gcsfs's chain, as squirrel-core ran
    assert fs.credentials.credentials is not None and fs.credentials.credentials.refresh_token == "r"


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (HttpError({"code": 400, "message": "Bad Request"}), True),  # squirrel-core's addition
        (HttpError({"code": "400", "message": "Bad Request"}), True),
        (HttpError({"code": 503, "message": "Service Unavailable"}), True),  # gcsfs's own rule from here on
        (HttpError({"code": 429, "message": "Too Many Requests"}), True),
        (HttpError({"code": 401, "message": "Invalid Credentials"}), True),
        (HttpError({"code": 401, "message": "Unauthorized"}), False),
        (HttpError({"code": 403, "message": "Forbidden"}), False),
        (HttpError({"code": 404, "message": "Not Found"}), False),
        (HttpError(), False),
        (ChecksumError("md5"), True),
        (NonRetryableError("stop"), False),
        (requests.exceptions.ConnectionError("reset"), True),
        (google.auth.exceptions.RefreshError("expired"), True),
        (aiohttp.client_exceptions.ServerDisconnectedError(), True),
        (ValueError("bad"), False),
        (FileNotFoundError("gone"), False),
    ],
)
def test_retry_predicate_is_gcsfs_rule_plus_http_400(exception, expected):
    assert custom_retry(exception) is expected
    code = getattr(exception, "code", None)
    assert gcsfs.retry.is_retriable(exception) is (expected and code not in (400, "400"))


class FlakyGCS(BaseHTTPRequestHandler):
    """Answers every GET with HTTP 400 ``failures`` times, then with the object's bytes."""

    failures = 0
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen.append(self.path)
        if len(type(self).seen) <= type(self).failures:
            body, status = json.dumps({"error": {"code": 400, "message": "Bad Request"}}).encode(), 400
        else:
            body, status = b"squirrel bytes", 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status != 200 else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_gcs():
    def start(failures: int) -> tuple[str, type[FlakyGCS]]:
        handler = type("Handler", (FlakyGCS,), {"failures": failures, "seen": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def local_fs(cls: type, endpoint: str) -> gcsfs.GCSFileSystem:
    """``cls`` pointed at the local server. gcsfs's experimental filesystem first asks a gRPC control plane for the
    bucket's layout, with sockets of its own that the guard cannot see: tell it the answer (a plain bucket)."""
    fs = cls(token="anon", endpoint_url=endpoint, skip_instance_cache=True)
    layouts = getattr(fs, "_storage_layout_cache", None)
    if layouts is not None:
        from gcsfs.extended_gcsfs import BucketType

        layouts["bucket"] = BucketType.NON_HIERARCHICAL
    return fs


def test_a_request_answered_400_is_retried_until_it_succeeds(flaky_gcs):
    endpoint, handler = flaky_gcs(failures=2)
    fs = local_fs(CustomGCSFileSystem, endpoint)
    fs.bad_request_backoff = 0.0
    assert fs.cat_file("bucket/obj") == b"squirrel bytes"
    assert len(handler.seen) == 3 and all("/b/bucket/o/obj" in p for p in handler.seen)


def test_plain_gcsfs_gives_up_at_the_first_400(flaky_gcs):
    endpoint, handler = flaky_gcs(failures=2)
    fs = local_fs(gcsfs.GCSFileSystem, endpoint)
    with pytest.raises(HttpError) as info:
        fs.cat_file("bucket/obj")
    assert info.value.code == 400 and len(handler.seen) == 1


def test_the_retries_are_bounded(flaky_gcs):
    endpoint, handler = flaky_gcs(failures=100)
    fs = local_fs(CustomGCSFileSystem, endpoint)
    fs.bad_request_backoff, fs.bad_request_retries = 0.0, 3
    with pytest.raises(HttpError) as info:
        fs.cat_file("bucket/obj")
    assert info.value.code == 400 and len(handler.seen) == 3


def test_the_gs_protocol_is_the_retrying_filesystem_once_installed():
    """squirrel-core registered its class for ``gs`` through an fsspec entry point; so does our pyproject."""
    import fsspec

    from squirrel_graph.io.gcs import CustomGCSFileSystem

    assert fsspec.get_filesystem_class("gs") is CustomGCSFileSystem
