"""A GCS filesystem that retries the spurious HTTP 400 (Bad Request) answers GCS sometimes gives (gcsfs #290).

squirrel-core got this by replacing ``gcsfs.retry.is_retriable`` for the whole process whenever one of its
filesystems was built. Here only this class's requests retry on 400: it wraps its own request methods around
gcsfs's, and gcsfs's module stays untouched. Needs the ``gcs`` extra (gcsfs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

try:
    import gcsfs.retry
    from gcsfs import GCSFileSystem
    from gcsfs.retry import HttpError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("squirrel_graph's GCS filesystem needs gcsfs: pip install 'squirrel_graph[gcs]'") from exc

__all__ = ["CustomGCSFileSystem", "custom_retry"]

logger = logging.getLogger(__name__)


def custom_retry(exception: BaseException) -> bool:
    """Whether a failed GCS request is worth retrying: gcsfs's own rule, plus HTTP 400 (squirrel-core's rule)."""
    if isinstance(exception, HttpError) and exception.code in (400, "400"):
        return True
    return gcsfs.retry.is_retriable(exception)


def _only_custom(exception: BaseException) -> bool:
    """Retriable by :func:`custom_retry` but not by gcsfs, which has already retried what it considers transient."""
    return custom_retry(exception) and not gcsfs.retry.is_retriable(exception)


class CustomGCSFileSystem(GCSFileSystem):
    """``gcsfs.GCSFileSystem`` (protocol ``gs``) whose requests are also retried after an HTTP 400.

    ``token="google_default"`` (the default) tries gcsfs's whole credential chain, which is what squirrel-core did
    (it dropped ``token`` and ``access``); any other ``token`` and ``access`` are passed on to gcsfs.
    """

    #: Attempts for a request that keeps failing with an error only :func:`custom_retry` calls transient.
    bad_request_retries: int = 6
    #: Seconds scale of the backoff between those attempts (about 1, 2, 4, ... seconds, at most 32).
    bad_request_backoff: float = 1.0

    def __init__(self, token: str = "google_default", access: str = "read_write", **kwargs: Any) -> None:
        self.token = token
        self.access = access
        super().__init__(token=None if token == "google_default" else token, access=access, **kwargs)

    async def _retrying_bad_requests(self, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        attempts = max(1, int(self.bad_request_retries))
        for attempt in range(attempts):
            try:
                return await call(*args, **kwargs)
            except Exception as exc:
                if attempt == attempts - 1 or not _only_custom(exc):
                    raise
                delay = self.bad_request_backoff * min(random.random() + 2**attempt, 32)
                logger.debug("squirrel_graph: GCS request failed with %r; retry %d in %.1fs", exc, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        return await self._retrying_bad_requests(super()._request, method, path, *args, **kwargs)

    async def _get_file_request(self, rpath: str, lpath: str, *args: Any, **kwargs: Any) -> Any:
        return await self._retrying_bad_requests(super()._get_file_request, rpath, lpath, *args, **kwargs)
