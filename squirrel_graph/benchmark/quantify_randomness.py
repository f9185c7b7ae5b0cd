"""How random a driver's shuffled stream is: the Kendall tau between two shuffled runs (squirrel-core's
``squirrel.benchmark.quantify_randomness``, also usable on any MapDriver).

1 means both runs gave the same order (no randomness), about 0 means unrelated orders. Use it to choose the item
shuffle buffer (docs: keep the key buffer at the number of shards).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from squirrel_graph.constants import SeedType
from squirrel_graph.io.drivers import MapDriver
from squirrel_graph.stream.composable import Composable
from squirrel_graph.stream.validate import check_callable, check_int

__all__ = ["DummyShardedDriver", "kendalltau_metric", "quantify_driver_randomness", "quantify_randomness"]


class DummyShardedDriver(MapDriver):
    """``num_shard`` shards of ``shard_size`` consecutive integers (keys "0", "1", ...); flattened by default."""

    name = "dummy_sharded_driver"

    def __init__(self, num_shard: int, shard_size: int) -> None:
        super().__init__()
        self.shard_size = check_int("DummyShardedDriver", "shard_size", shard_size, 0)
        self.key_it = range(check_int("DummyShardedDriver", "num_shard", num_shard, 0))
        self.data = np.arange(len(self.key_it) * self.shard_size)

    def get(self, key: str) -> np.ndarray:
        """The integers of shard ``key``."""
        start = int(key) * self.shard_size
        return self.data[start : start + self.shard_size]

    def keys(self) -> Iterator[str]:
        """``"0"`` to ``str(num_shard - 1)``, in order."""
        return iter(map(str, self.key_it))

    def get_iter(self, flatten: bool = True, **kwargs: Any) -> Composable:  # type: ignore[override]
        """:meth:`MapDriver.get_iter`, flattening shards into integers unless ``flatten=False``."""
        return super().get_iter(flatten=flatten, **kwargs)


def kendalltau_metric(result1: Any, result2: Any) -> float:
    """Kendall's tau between two sequences of the same items (scipy): 1 for equal orders, about 0 for unrelated."""
    try:
        from scipy.stats import kendalltau
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("kendalltau_metric needs scipy: pip install 'squirrel_graph[benchmark]'") from exc
    tau, _ = kendalltau(result1, result2)
    return float(tau)


def quantify_driver_randomness(
    driver: MapDriver,
    buffer_size: int,
    initial: int,
    n_samples: int = 250,
    metric: Callable[[Any, Any], float] = kendalltau_metric,
    seed1: SeedType = None,
    seed2: SeedType = None,
    key_buffer: int | None = None,
    item_key: Callable[[Any], Any] | None = None,
) -> float:
    """``|median|`` over ``n_samples`` pairs of ``metric(run1, run2)``, each run a full ``driver.get_iter`` pass with
    a key shuffle of ``key_buffer`` (default: all keys) and an item shuffle of ``buffer_size``/``initial``.

    ``item_key`` maps each item to what the metric compares (e.g. a sample id of a dict sample).
    """
    n_samples = check_int("quantify_randomness", "n_samples", n_samples, 1)
    check_callable("quantify_randomness", "metric", metric)
    check_callable("quantify_randomness", "item_key", item_key, allow_none=True)
    if key_buffer is None:
        key_buffer = max(1, len(list(driver.keys())))

    def run(seed: SeedType) -> list[Any]:
        items = driver.get_iter(
            shuffle_key_buffer=key_buffer,
            shuffle_item_buffer=buffer_size,
            item_shuffle_kwargs={"initial": initial, "seed": seed},
            key_shuffle_kwargs={"seed": seed},
            flatten=True,
        ).collect()
        return [item_key(i) for i in items] if item_key is not None else items

    distances = [metric(run(seed1), run(seed2)) for _ in range(n_samples)]
    return float(np.abs(np.median(np.array(distances))))


def quantify_randomness(
    num_shard: int,
    shard_size: int,
    buffer_size: int,
    initial: int,
    n_samples: int = 250,
    metric: Callable = kendalltau_metric,
    seed1: SeedType = None,
    seed2: SeedType = None,
) -> float:
    """Randomness of a sharded stream of ``num_shard * shard_size`` integers whose keys are fully shuffled and whose
    items go through a shuffle buffer of ``buffer_size`` (first yield after ``initial``): 1 deterministic, 0 random."""
    driver = DummyShardedDriver(num_shard, shard_size)
    return quantify_driver_randomness(
        driver, buffer_size, initial, n_samples, metric, seed1, seed2, key_buffer=num_shard
    )
