"""Epoch times of MessagepackDriver with and without fsspec's ``simplecache`` (squirrel-core's
``squirrel.benchmark.msgpack_caching``, the script behind the docs figure ``advanced/msgpack_caching.svg``).

squirrel-core ran the benchmark against GCS and drew the figure when the module was imported; here importing runs
nothing: call :func:`benchmark` and :func:`plot`, or :func:`main` for the whole script. pandas, seaborn and
matplotlib (the ``benchmark`` extra) are imported by the functions that need them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from squirrel_graph.io.drivers import MessagepackDriver
from squirrel_graph.stream.validate import check_callable, check_int

if TYPE_CHECKING:
    from pandas import DataFrame

__all__ = ["benchmark", "driver_types", "main", "plot", "remote_path", "so", "time_epoch"]

#: The store the docs figure was measured on (2 shards of about 100 MB); replace it with yours.
remote_path = "gs://your-bucket/msgpack-cache-demo-data"
#: fsspec storage options that put a ``simplecache`` in front of GCS.
so = {"protocol": "simplecache", "target_protocol": "gs", "cache_storage": "path/to/cache"}

#: The two set-ups compared: a label and a function building a fresh driver for each epoch.
driver_types: dict[str, Callable[[], MessagepackDriver]] = {
    "Caching": lambda: MessagepackDriver(remote_path, storage_options=so),
    "No Caching": lambda: MessagepackDriver(remote_path),
}

TITLE = "Loading 2 shards (~ 100MB each) via MessagepackDriver"
COLUMNS = ("Epoch", "Time (in s)", "Driver Type")


def _frame(rows: list[dict[str, Any]]) -> DataFrame:
    try:
        from pandas import DataFrame
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the msgpack caching benchmark needs pandas: pip install 'squirrel_graph[benchmark]'"
        ) from exc
    return DataFrame(rows, columns=list(COLUMNS))


def time_epoch(driver_init: Callable[[], MessagepackDriver]) -> float:
    """Seconds to read every sample of a driver built by ``driver_init`` (through a tqdm progress bar)."""
    check_callable("time_epoch", "driver_init", driver_init)
    stream = driver_init().get_iter().tqdm()
    start = time.time()
    stream.join()
    return time.time() - start


def benchmark(driver_types: dict[str, Any], num_epochs: int = 10) -> DataFrame:
    """One row per driver type and epoch: columns ``Epoch`` (from 1), ``Time (in s)`` and ``Driver Type``."""
    num_epochs = check_int("benchmark", "num_epochs", num_epochs, 0)
    rows = [
        {"Epoch": epoch + 1, "Time (in s)": time_epoch(driver_init=init), "Driver Type": label}
        for label, init in driver_types.items()
        for epoch in range(num_epochs)
    ]
    return _frame(rows)


def plot(df: DataFrame, path: str | None = None) -> Any:
    """squirrel-core's figure: bars of time per epoch, coloured by driver type, legend right of the axes; saved to
    ``path`` (format from its suffix) when given. Returns the matplotlib Axes."""
    try:
        import matplotlib.pyplot as plt
        import seaborn as sns
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plot needs matplotlib and seaborn: pip install 'squirrel_graph[benchmark]'") from exc
    sns.set_theme(style="darkgrid")
    sns.set_palette(["#9E36FF", "#11D8C1"])
    ax = sns.barplot(data=df, x="Epoch", y="Time (in s)", hue="Driver Type")
    ax.set(title=TITLE)
    ax.legend(loc="center left", bbox_to_anchor=(1, 0.5))
    if path is not None:
        plt.savefig(path, bbox_inches="tight")
    return ax


def main(path: str = "advanced/msgpack_caching.svg", num_epochs: int = 10) -> DataFrame:
    """What squirrel-core's module did on import: benchmark :data:`driver_types` and save the figure to ``path``."""
    df = benchmark(driver_types, num_epochs)
    plot(df, path)
    return df


if __name__ == "__main__":
    main()
