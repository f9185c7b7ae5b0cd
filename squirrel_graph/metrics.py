"""Metric definitions shared by ``monitor()`` and its runtime: MetricsConf, units, IOPS, throughput, item sizes.

IOPS is items per second and throughput is bytes (in ``throughput_unit``) per second, both over the last
``window_size`` items that reached the monitor, timed from the moment the item before that window arrived.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

UNITS: dict[str, int] = {"bytes": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30}


@dataclass
class MetricsConf:
    """Which metrics a monitor computes, and the throughput unit (bytes, KB, MB or GB)."""

    iops: bool = True
    throughput: bool = True
    throughput_unit: str = "MB"

    def asdict(self) -> dict[str, Any]:
        return asdict(self)


def check_unit(method: str, unit: str) -> None:
    """Unknown units are an error when the stream is built (squirrel-core logged and used bytes)."""
    if unit not in UNITS:
        raise ValueError(f"{method}(metrics_conf=...): throughput_unit must be one of {sorted(UNITS)}, got {unit!r}")


def metrics_iops(count: int, duration: float) -> float:
    """Items per second, rounded to 2 decimals."""
    return round(count / duration, 2) if duration > 0 else 0.0


def metrics_throughput(size: int, duration: float, unit: str = "bytes") -> float:
    """``size`` bytes per ``duration`` seconds in ``unit``, rounded to 2 decimals."""
    return round(size / UNITS[unit] / duration, 2) if duration > 0 else 0.0


def estimate_size(item: Any, _depth: int = 0) -> int:
    """A cheap size in bytes, without pickling: ``nbytes`` of arrays/tensors, ``len`` of bytes/str, the sum over
    containers (a few levels deep; long lists extrapolated from their first items), 8 for numbers,
    ``sys.getsizeof`` otherwise."""
    nbytes = getattr(item, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(item, (bytes, bytearray, memoryview, str)):
        return len(item)
    if isinstance(item, (int, float, bool)) or item is None:
        return 8
    if _depth < 4:
        if isinstance(item, dict):
            return sum(estimate_size(v, _depth + 1) for v in item.values()) + 8 * len(item)
        if isinstance(item, (list, tuple)):
            if len(item) > 8:  # a batch: extrapolate from its first items instead of visiting all of them
                return sum(estimate_size(v, _depth + 1) for v in item[:4]) * len(item) // 4
            return sum(estimate_size(v, _depth + 1) for v in item)
    numel = getattr(item, "numel", None)  # a torch tensor without nbytes
    if callable(numel) and hasattr(item, "element_size"):
        return int(numel()) * int(item.element_size())
    return sys.getsizeof(item)


Clock = Callable[[], float]
DEFAULT_CLOCK: Clock = time.perf_counter
