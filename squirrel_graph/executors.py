"""What counts as an executor for ``async_map``: a concurrent.futures.Executor or a dask.distributed.Client."""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any


def is_dask_client(obj: Any) -> bool:
    """A ``dask.distributed.Client``, recognised without importing dask."""
    cls = type(obj)
    return cls.__name__ == "Client" and cls.__module__.split(".")[0] == "distributed"


def is_executor(obj: Any) -> bool:
    """A ``concurrent.futures.Executor`` or a ``dask.distributed.Client``."""
    return isinstance(obj, Executor) or is_dask_client(obj)
