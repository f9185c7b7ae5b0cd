"""Retries of shard reads: which errors are transient, the backoff between attempts, and the error after the last.

Transient (retried): ``TimeoutError`` (fsspec's ``FSTimeoutError`` and aiohttp's timeouts included),
``ConnectionError`` (reset, refused, aborted, broken pipe), an ``OSError`` whose errno says the network or the
server is busy or down (s3fs maps S3's ``SlowDown``/503 to ``EBUSY`` and ``InternalError``/500 to
``EREMOTEIO``), botocore's connection, HTTP-client and incomplete-read errors, aiohttp's connection and payload
errors. Never retried: ``FileNotFoundError``, ``PermissionError``, other ``OSError`` kinds of a path
(``IsADirectoryError``, ...), ``CorruptShardError``, and every other exception (user code, decoding).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from squirrel_graph.errors import CorruptShardError

logger = logging.getLogger("squirrel_graph")

BACKOFF_CAP = 30.0  # seconds: the longest wait between two attempts

_NEVER = (
    CorruptShardError,
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)  # distinct classes on Python 3.10, one since 3.11
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EAGAIN",
        "EBUSY",
        "ECONNABORTED",
        "ECONNREFUSED",
        "ECONNRESET",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "ENETUNREACH",
        "EPIPE",
        "EREMOTEIO",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
)
# third-party base classes (top-level package, class name), matched along the MRO so neither library is imported
_THIRD_PARTY = frozenset(
    {
        ("botocore", "ConnectionError"),  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError
        ("botocore", "HTTPClientError"),  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
        ("botocore", "IncompleteReadError"),
        ("aiohttp", "ClientConnectionError"),  # ServerDisconnectedError, ClientOSError, ServerTimeoutError
        ("aiohttp", "ClientPayloadError"),
    }
)
_jitter = random.Random()  # private: retries never move the global random state


def is_transient(exc: BaseException) -> bool:
    """True for an error that a later attempt may not see (network, timeouts, a busy server)."""
    if isinstance(exc, _NEVER):
        return False
    if isinstance(exc, (*_TIMEOUTS, ConnectionError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    return any((cls.__module__.split(".")[0], cls.__name__) in _THIRD_PARTY for cls in type(exc).__mro__)


def is_timeout(exc: BaseException) -> bool:
    """True for a timeout of any of the libraries below us."""
    if isinstance(exc, _TIMEOUTS):
        return True
    return any(cls.__name__ in ("ReadTimeoutError", "ConnectTimeoutError") for cls in type(exc).__mro__)


def backoff_delay(backoff: float, retry: int) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): ``backoff * 2**retry``, capped, plus up to 25 %."""
    return min(BACKOFF_CAP, backoff * 2.0**retry) * (1.0 + 0.25 * _jitter.random())


class Retrying:
    """``fn(key)`` retried ``retries`` times after a transient error, with backoff; then (or once ``stop`` is set) a
    ``TimeoutError`` (the last error was a timeout) or ``ConnectionError`` naming the shard and the attempts."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        retries: int,
        backoff: float,
        timeout: float | None,
        stage: str,
        stop: threading.Event | None = None,
    ) -> None:
        self.fn, self.retries, self.backoff, self.timeout = fn, retries, backoff, timeout
        self.stage, self.stop = stage, stop

    def __call__(self, key: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.fn(key)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                stopping = self.stop is not None and self.stop.is_set()
                if attempt > self.retries or stopping:
                    if self.stop is not None:
                        self.stop.set()  # sibling reads of this stream give up after their current attempt
                    raise self._gave_up(key, exc, attempt, stopping) from exc
                delay = backoff_delay(self.backoff, attempt - 1)
                logger.warning(
                    "%s: shard %r: %s: %s; attempt %d of %d in %.2f s",
                    self.stage,
                    key,
                    type(exc).__name__,
                    exc,
                    attempt + 1,
                    self.retries + 1,
                    delay,
                )
                if self.stop is None:
                    time.sleep(delay)
                elif self.stop.wait(delay):
                    raise self._gave_up(key, exc, attempt, True) from exc

    def _gave_up(self, key: Any, exc: BaseException, attempts: int, stopping: bool) -> Exception:
        kind = TimeoutError if is_timeout(exc) else ConnectionError
        limit = f"fetch_timeout={self.timeout:g} s, " if self.timeout is not None else ""
        why = "; stopped early: the stream is closing or another shard failed" if stopping else ""
        return kind(
            f"{self.stage}: shard {key!r} failed after {attempts} attempt(s) "
            f"({limit}fetch_retries={self.retries}){why}: {type(exc).__name__}: {exc}"
        )


def retrying(
    fn: Callable[[Any], Any] | None,
    retries: int,
    backoff: float,
    timeout: float | None,
    stage: str,
    stop: threading.Event | None = None,
) -> Callable[[Any], Any] | None:
    """``fn`` wrapped in :class:`Retrying`, or ``fn`` itself when there is nothing to retry or bound."""
    if fn is None or (retries <= 0 and timeout is None):
        return fn
    return Retrying(fn, retries, backoff, timeout, stage, stop)
