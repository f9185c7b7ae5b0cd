"""What counts as an executor for ``async_map``: a concurrent.futures.Executor or a dask.distributed.Client."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


def is_dask_client(obj: Any) -> bool:
    """A ``dask.distributed.Client``, recognised without importing dask."""
    cls = type(obj)
    return cls.__name__ == "Client" and cls.__module__.split(".")[0] == "distributed"


def is_executor(obj: Any) -> bool:
    """A ``concurrent.futures.Executor`` or a ``dask.distributed.Client``."""
    return isinstance(obj, Executor) or is_dask_client(obj)


class AsyncContent:
    """One item's ``func(item)``, submitted to ``executor`` now; :meth:`value` waits for it (squirrel-core's
    ``iterstream.base.AsyncContent``; squirrel_graph's own async_map does not use it)."""

    def __init__(self, item: Any, func: Callable[[Any], Any], executor: Executor) -> None:
        self.stack = 1
        self.future: Future[Any] = executor.submit(func, item)

    def value(self, timeout: float | None = None) -> Any:
        """The result, waiting at most ``timeout`` seconds (None: as long as it takes); re-raises func's error."""
        return self.future.result(timeout)
