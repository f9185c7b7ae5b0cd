"""A stalled or flaky object store fails in bounded time, and transient errors are retried (issue 13, item 4).

The S3 server is moto in its own process on 127.0.0.1, so SIGSTOP freezes it for real (the kernel still accepts
connections, nothing answers). Flaky reads come from a MemoryFileSystem subclass that fails the first reads.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from squirrel_graph.errors import CorruptShardError
from squirrel_graph.io.drivers import MapDriver, MessagepackDriver
from squirrel_graph.runtime.retry import is_transient

SHARDS, PER_SHARD = 12, 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoProcess:
    """moto's S3 server as a child process on 127.0.0.1 that a test can freeze (SIGSTOP) and thaw (SIGCONT)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"moto server on port {self.port} did not start") from None
                time.sleep(0.05)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.thaw()  # a stopped process would not see SIGTERM until continued
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoProcess]:
    env = {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = MotoProcess()
    try:
        yield server
    finally:
        server.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def s3_written(moto: MotoProcess) -> tuple[str, dict[str, Any]]:
    """A store of SHARDS shards of PER_SHARD samples in a fresh bucket (written once: the tests only read)."""
    import s3fs

    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": moto.endpoint}}
    bucket = f"stall-{uuid.uuid4().hex[:10]}"
    s3fs.S3FileSystem(**options).mkdir(bucket)
    url = f"s3://{bucket}/store"
    store = MessagepackDriver(url, storage_options=options).store
    for k in range(SHARDS):
        store.set([{"i": k * PER_SHARD + j} for j in range(PER_SHARD)], key=f"k{k:02d}")
    return url, options


@pytest.fixture
def s3_store(moto: MotoProcess, s3_written: tuple[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The written store; the server is thawed after the test whatever happened."""
    try:
        yield s3_written
    finally:
        moto.thaw()


def _wait_for_threads(baseline: int, grace: float = 5.0) -> int:
    deadline = time.monotonic() + grace
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    return threading.active_count()


@pytest.mark.timeout(60)  # without a fetch timeout the read blocks for minutes: fail instead of hanging
@pytest.mark.parametrize("max_workers", [1, 3])
def test_a_store_that_stops_answering_mid_run_raises_timeout_naming_the_shard(moto, s3_store, max_workers):
    url, options = s3_store
    driver = MessagepackDriver(url, storage_options=options, fetch_timeout=1, fetch_retries=1, fetch_backoff=0.05)
    assert len(driver.fetch("k00")) == PER_SHARD  # warm up: fsspec's loop thread and the HTTP session exist
    baseline = threading.active_count()
    it = iter(driver.get_iter(max_workers=max_workers, prefetch_buffer=1))
    got = [next(it)]  # the first shard was read
    moto.freeze()
    start = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        got.extend(it)
    elapsed = time.monotonic() - start
    it.close()
    message = str(info.value)
    assert elapsed < 8, f"the stalled read took {elapsed:.1f} s to fail"
    assert f"{url}/k" in message and ".gz" in message, message  # the shard's URL
    assert "2 attempt(s)" in message and "fetch_timeout=1 s" in message, message
    assert [s["i"] for s in got] == list(range(len(got)))  # what came before the stall, in order, once
    assert _wait_for_threads(baseline) <= baseline, [t.name for t in threading.enumerate()]


@pytest.mark.timeout(60)
def test_a_stall_shorter_than_the_retries_loses_and_repeats_nothing(moto, s3_store, caplog):
    url, options = s3_store
    driver = MessagepackDriver(url, storage_options=options, fetch_timeout=1, fetch_retries=4, fetch_backoff=0.05)
    stream = driver.get_iter(max_workers=2, prefetch_buffer=1)
    it = iter(stream)
    got = [next(it)]
    moto.freeze()
    thaw = threading.Timer(1.5, moto.thaw)
    thaw.start()
    try:
        with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
            got.extend(it)
    finally:
        thaw.cancel()
        moto.thaw()
    assert [s["i"] for s in got] == list(range(SHARDS * PER_SHARD))  # every sample exactly once, in order
    assert any("attempt 2 of 5" in r.getMessage() for r in caplog.records)  # a retry did happen


def test_explain_shows_the_fetch_options_of_an_object_store(s3_store):
    url, options = s3_store
    text = str(MessagepackDriver(url, storage_options=options, fetch_timeout=7).get_iter(fetch_retries=5).explain())
    assert "'fetch_timeout': 7.0, 'fetch_retries': 5, 'fetch_backoff': 0.5" in text


# ----------------------------------------------------------------------------------------- flaky filesystem


class FlakyMemoryFileSystem(MemoryFileSystem):
    """memory:// under ``flakymem://`` whose reads of a shard fail with ``errors[path]`` (one per attempt) first."""

    protocol = ("flakymem",)
    store: dict[str, Any] = {}  # noqa: RUF012 - fsspec's memory filesystems keep their files on the class
    pseudo_dirs = [""]  # noqa: RUF012
    errors: dict[str, list[BaseException]] = {}  # noqa: RUF012
    opens: dict[str, int] = {}  # noqa: RUF012

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        if isinstance(path, str) and path.startswith("flakymem://"):
            path = path[len("flakymem://") :]
        return super()._strip_protocol(path)

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        path = self._strip_protocol(path)
        if "r" in mode and path.endswith(".gz"):
            type(self).opens[path] = type(self).opens.get(path, 0) + 1
            pending = type(self).errors.get(path)
            if pending:
                raise pending.pop(0)
        return super()._open(path, mode, *args, **kwargs)


fsspec.register_implementation("flakymem", FlakyMemoryFileSystem, clobber=True)


@pytest.fixture
def flaky_url() -> Iterator[str]:
    url = f"flakymem://flaky-{uuid.uuid4().hex[:8]}"
    store = MessagepackDriver(url).store
    for k in range(4):
        store.set([{"i": k * PER_SHARD + j} for j in range(PER_SHARD)], key=f"k{k}")
    FlakyMemoryFileSystem.errors.clear()
    FlakyMemoryFileSystem.opens.clear()
    yield url
    FlakyMemoryFileSystem.errors.clear()
    FlakyMemoryFileSystem.opens.clear()


def _path(url: str, key: str) -> str:
    return f"/{url.removeprefix('flakymem://')}/{key}.gz"


@pytest.mark.parametrize("compile_for", ["threaded-1", "threaded-4", "dask-local"])
def test_transient_errors_are_retried_and_every_sample_arrives_once(flaky_url, compile_for):
    flaky = FlakyMemoryFileSystem
    flaky.errors[_path(flaky_url, "k1")] = [ConnectionResetError("reset by peer"), TimeoutError("slow")]
    flaky.errors[_path(flaky_url, "k3")] = [OSError(errno.EBUSY, "SlowDown")]
    driver = MessagepackDriver(flaky_url, fetch_retries=2, fetch_backoff=0.01)
    kind, _, workers = compile_for.partition("-")
    stream = driver.get_iter(max_workers=1 if workers == "1" else 4)
    if kind == "dask":
        pytest.importorskip("dask")
        stream = stream.compile(backend="dask")
    assert [s["i"] for s in stream.collect()] == list(range(4 * PER_SHARD))
    assert flaky.opens[_path(flaky_url, "k1")] == 3 and flaky.opens[_path(flaky_url, "k3")] == 2
    assert flaky.opens[_path(flaky_url, "k0")] == 1 and flaky.opens[_path(flaky_url, "k2")] == 1


def test_a_transient_error_that_persists_is_a_connection_error_naming_shard_and_attempts(flaky_url):
    FlakyMemoryFileSystem.errors[_path(flaky_url, "k2")] = [ConnectionRefusedError("refused")] * 5
    driver = MessagepackDriver(flaky_url, fetch_retries=2, fetch_backoff=0.01)
    with pytest.raises(ConnectionError, match=r"shard 'k2' failed after 3 attempt\(s\).*refused"):
        driver.get_iter(max_workers=2).collect()
    assert FlakyMemoryFileSystem.opens[_path(flaky_url, "k2")] == 3


@pytest.mark.parametrize(
    "error",
    [PermissionError(errno.EACCES, "AccessDenied"), FileNotFoundError("gone"), OSError(errno.EIO, "disk error")],
    ids=["permission", "not-found", "eio"],
)
def test_errors_that_are_not_transient_are_raised_at_once(flaky_url, error):
    FlakyMemoryFileSystem.errors[_path(flaky_url, "k1")] = [error]
    driver = MessagepackDriver(flaky_url, fetch_retries=3, fetch_backoff=5)  # a retry would take seconds
    start = time.monotonic()
    with pytest.raises(type(error)):
        driver.get_iter(max_workers=1).collect()
    assert time.monotonic() - start < 2
    assert FlakyMemoryFileSystem.opens[_path(flaky_url, "k1")] == 1


def test_a_corrupt_shard_is_not_retried(flaky_url):
    fsspec.filesystem("flakymem").pipe_file(_path(flaky_url, "k1"), b"\x1f\x8b not really gzip")
    driver = MessagepackDriver(flaky_url, fetch_retries=3, fetch_backoff=5)
    with pytest.raises(CorruptShardError):
        driver.get_iter(max_workers=2).collect()
    assert FlakyMemoryFileSystem.opens[_path(flaky_url, "k1")] == 1


class _Flaky(MapDriver):
    """A user's MapDriver whose get fails once per key with a ConnectionError."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[int, int] = {}

    def keys(self) -> list[int]:
        return [0, 1, 2]

    def get(self, key: int) -> list[int]:
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] == 1:
            raise ConnectionAbortedError(f"flaky {key}")
        return [key]


def test_a_user_map_driver_is_retried_too_but_cannot_be_given_a_timeout():
    driver = _Flaky()
    assert driver.get_iter(flatten=True, fetch_backoff=0.01).collect() == [0, 1, 2]
    assert driver.calls == {0: 2, 1: 2, 2: 2}
    with pytest.raises(ValueError, match=r"fetch_timeout.*_Flaky\.get\(\)"):
        driver.get_iter(fetch_timeout=5)
    driver.get_iter(fetch_timeout=None)  # no limit is always possible


def test_local_reads_are_not_bounded_and_explain_says_so(tmp_path):
    url = str(tmp_path / "store")
    MessagepackDriver(url).store.set([1, 2], key="a")
    stream = MessagepackDriver(url).get_iter()
    assert "'fetch_timeout': 'unbounded', 'fetch_retries': 2" in str(stream.explain())
    assert stream.collect() == [1, 2]


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TimeoutError("t"), True),
        (ConnectionResetError("r"), True),
        (OSError(errno.EBUSY, "SlowDown"), True),
        (OSError(errno.EREMOTEIO, "InternalError"), True),
        (OSError(errno.EIO, "other"), False),
        (FileNotFoundError("f"), False),
        (PermissionError("p"), False),
        (IsADirectoryError("d"), False),
        (CorruptShardError("c"), False),
        (ValueError("v"), False),
    ],
)
def test_which_errors_are_transient(error, transient):
    assert is_transient(error) is transient


def test_third_party_network_errors_are_transient():
    import aiohttp
    import botocore.exceptions as bex
    from fsspec.exceptions import FSTimeoutError

    assert is_transient(FSTimeoutError())
    assert is_transient(bex.EndpointConnectionError(endpoint_url="http://x"))
    assert is_transient(bex.ReadTimeoutError(endpoint_url="http://x"))
    assert is_transient(bex.ConnectionClosedError(endpoint_url="http://x"))
    assert is_transient(aiohttp.ServerDisconnectedError())
    assert is_transient(aiohttp.ClientPayloadError("truncated"))
    assert not is_transient(bex.NoCredentialsError())


def test_botocore_timeouts_that_persist_are_timeout_errors_naming_shard_attempts_and_the_last_error(flaky_url):
    import botocore.exceptions as bex

    driver = MessagepackDriver(flaky_url, fetch_retries=1, fetch_backoff=0.01)
    for key, error in [("k1", bex.ConnectTimeoutError), ("k2", bex.ReadTimeoutError)]:
        FlakyMemoryFileSystem.errors[_path(flaky_url, key)] = [error(endpoint_url="http://s3")] * 2
        with pytest.raises(TimeoutError) as info:
            driver.get_iter(max_workers=1).collect()
        what = error.__name__.removesuffix("TimeoutError")
        assert str(info.value) == (
            f"fetch(MessagepackDriver({flaky_url!r})): shard {key!r} failed after 2 attempt(s) (fetch_retries=1): "
            f'{error.__name__}: {what} timeout on endpoint URL: "http://s3"'
        )
        assert isinstance(info.value.__cause__, error)


def test_a_read_that_is_told_to_stop_gives_up_after_its_current_attempt(caplog):
    """``stop`` set (the stream closes, or a sibling read gave up): no retry, and the error says why."""
    from squirrel_graph.runtime.retry import retrying

    calls = []

    def reset(key):
        calls.append(key)
        raise ConnectionResetError("reset by peer")

    stop = threading.Event()
    stop.set()
    read = retrying(reset, retries=3, backoff=0.2, timeout=2.5, stage="fetch(s3://b)", stop=stop)
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"), pytest.raises(ConnectionError) as info:
        read("k7")
    assert calls == ["k7"] and type(info.value) is ConnectionError and caplog.records == []
    assert str(info.value) == (
        "fetch(s3://b): shard 'k7' failed after 1 attempt(s) (fetch_timeout=2.5 s, fetch_retries=3); stopped early: "
        "the stream is closing or another shard failed: ConnectionResetError: reset by peer"
    )


def test_a_read_waiting_to_retry_gives_up_when_told_to_stop_and_one_that_gives_up_stops_the_others():
    from squirrel_graph.runtime.retry import retrying

    stop = threading.Event()

    def stalled(key):
        threading.Timer(0.05, stop.set).start()  # the stream closes during the backoff (2 s and more)
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError) as info:
        retrying(stalled, retries=2, backoff=2.0, timeout=None, stage="fetch(x)", stop=stop)("k1")
    assert str(info.value) == (
        "fetch(x): shard 'k1' failed after 1 attempt(s) (fetch_retries=2); stopped early: the stream is closing or "
        "another shard failed: TimeoutError: read timed out"
    )
    errors = [ConnectionRefusedError("refused"), ConnectionRefusedError("refused again")]

    def refused(key):
        raise errors.pop(0)

    sibling_stop = threading.Event()
    with pytest.raises(ConnectionError) as info:
        retrying(refused, retries=1, backoff=0.001, timeout=None, stage="fetch(x)", stop=sibling_stop)("k2")
    assert (
        str(info.value)
        == "fetch(x): shard 'k2' failed after 2 attempt(s) (fetch_retries=1): ConnectionRefusedError: refused again"
    )
    assert sibling_stop.is_set()  # the sibling reads of the stream give up after their current attempt


def test_retries_without_a_stop_flag_sleep_and_log_each_attempt(caplog):
    from squirrel_graph.runtime.retry import Retrying, retrying

    outcomes = [ConnectionResetError("reset"), OSError(errno.EBUSY, "SlowDown"), "data"]

    def flaky(key):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return f"{key}: {outcome}"

    read = retrying(flaky, retries=2, backoff=0.01, timeout=None, stage="fetch(y)")
    assert isinstance(read, Retrying)
    with caplog.at_level(logging.WARNING, logger="squirrel_graph"):
        assert read("k3") == "k3: data"
    assert [r.getMessage() for r in caplog.records] == [
        "fetch(y): shard 'k3': ConnectionResetError: reset; attempt 2 of 3 in 0.01 s",  # 10 ms .. 12.5 ms
        "fetch(y): shard 'k3': OSError: [Errno 16] SlowDown; attempt 3 of 3 in 0.02 s",  # doubled
    ]


def test_reads_are_wrapped_only_when_there_is_something_to_retry_or_bound():
    from squirrel_graph.runtime.retry import Retrying, retrying

    assert retrying(None, 3, 0.5, 10.0, "s") is None
    assert retrying(len, 0, 0.5, None, "s") is len and retrying(len, -1, 0.5, None, "s") is len
    assert isinstance(retrying(len, 0, 0.5, 10.0, "s"), Retrying)  # a timeout to name in the error
    assert isinstance(retrying(len, 1, 0.5, None, "s"), Retrying)


def test_the_backoff_doubles_per_retry_up_to_the_cap_plus_up_to_a_quarter_and_leaves_random_alone():
    import random

    from squirrel_graph.runtime.retry import BACKOFF_CAP, backoff_delay

    state = random.getstate()
    for retry, base in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, BACKOFF_CAP), (20, BACKOFF_CAP)]:
        delays = [backoff_delay(0.5, retry) for _ in range(200)]
        assert all(base <= d <= 1.25 * base for d in delays), (retry, min(delays), max(delays))
        assert max(delays) - min(delays) > 0.15 * base  # jittered over the quarter
    assert random.getstate() == state
