"""The body of one per-key task, shared by every engine that runs :class:`~squirrel_graph.graph.PerKey` nodes:
fetch the shards of some keys and run the per-key stages over their samples in one generated loop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from squirrel_graph.graph import PerKey
from squirrel_graph.runtime import ops, retry
from squirrel_graph.runtime.codegen import generate


class PerKeyTask:
    """Picklable task body: ``task(keys)`` returns (the items of those shards after the per-key stages, corrupt
    shards skipped as (key, reason)). The loop is generated (and cached) in the process that runs it."""

    def __init__(self, node: PerKey) -> None:
        self.node = node

    def __call__(self, keys: list[Any]) -> tuple[list[Any], list[tuple[Any, str]]]:
        fetch, state = self.node.fetch, ops.FetchState()
        get = retry.retrying(fetch.fn, fetch.retries, fetch.backoff, fetch.timeout, fetch.label())
        get = ops.skipping_corrupt(get, state, fetch.label()) if fetch.skip_corrupt else get
        shards: Iterable[Any] = (get(k) for k in keys)
        if self.node.nodes:  # flatten/map/filter: one loop
            shards = generate(self.node.nodes, self.node.node_ids[1:]).open(iter(shards), None)
        return list(shards), state.skipped
