"""squirrel-core compatible path ``squirrel.iterstream.iterators``: the plain generator helpers, with squirrel-core's
signatures."""

from squirrel_graph.iterator_functions import (
    MetricsConf,
    batched_,
    dask_delayed_,
    filter_,
    flatten_,
    get_random_range,
    getsize,
    map_,
    metrics_iops,
    metrics_throughput,
    monitor_,
    shuffle_,
    sliding_,
    take_,
    tqdm_,
    zip_index_,
)

__all__ = [
    "MetricsConf",
    "batched_",
    "dask_delayed_",
    "filter_",
    "flatten_",
    "get_random_range",
    "getsize",
    "map_",
    "metrics_iops",
    "metrics_throughput",
    "monitor_",
    "shuffle_",
    "sliding_",
    "take_",
    "tqdm_",
    "zip_index_",
]
