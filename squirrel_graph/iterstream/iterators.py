"""squirrel-core compatible path ``squirrel.iterstream.iterators``: the plain generator helpers."""

from squirrel_graph.randomness import get_random_range
from squirrel_graph.runtime.ops import (
    batched_,
    filter_,
    flatten_,
    getsize,
    map_,
    shuffle_,
    sliding_,
    take_,
    tqdm_,
    zip_index_,
)

__all__ = [
    "batched_",
    "filter_",
    "flatten_",
    "get_random_range",
    "getsize",
    "map_",
    "shuffle_",
    "sliding_",
    "take_",
    "tqdm_",
    "zip_index_",
]
