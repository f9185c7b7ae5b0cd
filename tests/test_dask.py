"""dask: squirrel-core's documented results, collapse_dask's one task per item, on a real LocalCluster."""

from __future__ import annotations

import pytest
from dask_helpers import fail_on_7, linear_fn, multiply, square

from squirrel_graph import IterableSource
from squirrel_graph.errors import stage_of

distributed = pytest.importorskip("distributed")


def test_documented_examples_on_a_cluster(dask_client):
    assert IterableSource([1, 2, 3]).async_map(square, executor=dask_client).collect() == [1, 4, 9]
    assert IterableSource(range(5)).dask_map(linear_fn, a=2).materialize_dask().collect() == [1, 3, 5, 7, 9]
    assert IterableSource(range(5)).dask_map(multiply, factor=10).materialize_dask().collect() == [0, 10, 20, 30, 40]


def test_documented_examples_without_a_client_use_the_local_scheduler():
    assert IterableSource(range(5)).dask_map(linear_fn, a=2).materialize_dask().collect() == [1, 3, 5, 7, 9]
    delayed = IterableSource(range(3)).dask_map(square).dask_map(linear_fn).collect()
    assert [d.compute() for d in delayed] == [1, 2, 5]  # before materialize_dask: dask.delayed objects


def test_dask_map_equals_map_equals_async_map(dask_client):
    items = list(range(40))
    expected = IterableSource(items).map(square).collect()
    assert IterableSource(items).dask_map(square).materialize_dask().collect() == expected
    assert IterableSource(items).async_map(square).collect() == expected
    uncollapsed = IterableSource(items).dask_map(square).materialize_dask().compile(disable=["collapse_dask"])
    assert uncollapsed.collect() == expected


@pytest.mark.parametrize("partition_size, tasks", [(1, 200), (100, 2), (30, 7)])
def test_three_dask_maps_run_as_one_task_per_item_or_partition(dask_client, partition_size, tasks):
    stream = (
        IterableSource(range(200))
        .dask_map(square)
        .dask_map(linear_fn, a=3)
        .dask_map(multiply, factor=2)
        .materialize_dask(partition_size=partition_size)
    )
    with distributed.get_task_stream(dask_client) as ts:
        out = stream.collect()
    assert out == [2 * (3 * x * x + 1) for x in range(200)]
    assert len(ts.data) == tasks  # squirrel-core ran 3 tasks per item: 600
    text = str(stream.explain())
    per = "item" if partition_size == 1 else f"{partition_size} items"
    assert f"3 maps -> 1 task per {per}" in text and "[dask]" in text


def test_an_error_in_a_task_surfaces_at_its_item_with_the_stage_name(dask_client):
    got = []
    with pytest.raises(ValueError, match="seven") as info:
        for x in IterableSource(range(10)).dask_map(fail_on_7).dask_map(square).materialize_dask():
            got.append(x)
    assert got == [0, 1, 4, 9, 16, 25, 36]
    assert "dask_map(fail_on_7)" in stage_of(info.value)


def test_bad_dask_arguments():
    with pytest.raises(TypeError, match="dask_map"):
        IterableSource([1]).dask_map(3)
    with pytest.raises(ValueError, match="partition_size"):
        IterableSource([1]).dask_map(square).materialize_dask(partition_size=0)


def _store(tmp_path, shards=8, per=10):
    from torch_helpers import write_store

    url = str(tmp_path / "store")
    return url, write_store(url, [per] * shards)


def test_whole_plan_mode_runs_the_per_key_part_on_the_cluster_with_the_same_items(dask_client, tmp_path):
    from dask_helpers import keep_not_div3, sample_id

    from squirrel_graph.driver import MessagepackDriver

    url, total = _store(tmp_path)
    local = MessagepackDriver(url).get_iter().map(sample_id).filter(keep_not_div3).batched(4)
    remote = local.compile(backend="dask", client=dask_client)
    with distributed.get_task_stream(dask_client) as ts:
        got = remote.collect()
    kept = [i for i in range(total) if i % 3]
    assert got == local.collect() == [kept[i : i + 4] for i in range(0, len(kept) - len(kept) % 4, 4)]
    assert len(ts.data) == 8  # one task per shard key
    text = str(remote.explain())
    assert "[offload_to_dask] offloaded" in text and "[dask] dask per key[fetch(" in text
    assert "batched(4)" in text.split("[dask] dask per key")[1]  # batching stays local, after the per-key part


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(dask_client, tmp_path):
    import os
    import signal
    from collections import Counter

    from dask_helpers import slow_id

    from squirrel_graph.driver import MessagepackDriver

    url, total = _store(tmp_path, shards=24, per=5)
    stream = MessagepackDriver(url).get_iter(max_workers=4).map(slow_id).compile(backend="dask", client=dask_client)
    pids = dask_client.run(os.getpid)
    got, killed = [], False
    for item in stream:
        got.append(item)
        if len(got) == 20 and not killed:  # some tasks are running on both workers now
            os.kill(next(iter(pids.values())), signal.SIGKILL)
            killed = True
    assert killed and Counter(got) == Counter(range(total))  # dask rescheduled the lost tasks
    assert got == sorted(got)  # and the stream stayed in order


def test_whole_plan_mode_reports_corrupt_shards_skipped_on_the_workers(dask_client, tmp_path):
    from squirrel_graph.driver import MessagepackDriver

    url, total = _store(tmp_path, shards=4, per=5)
    with open(f"{url}/shard-002.gz", "wb") as f:
        f.write(b"garbage")
    stream = MessagepackDriver(url).get_iter(skip_corrupt=True).compile(backend="dask", client=dask_client)
    got = sorted(s["i"] for s in stream.collect())
    assert got == [i for i in range(total) if i // 5 != 2]
    assert [k for k, _ in stream.skipped_shards] == ["shard-002"]


LOCAL_SCHEDULER_RUN = """
import os

import distributed
from dask_helpers import linear_fn, square
from squirrel_graph import IterableSource

try:
    distributed.default_client()
    raise SystemExit("a client exists in a fresh process")
except ValueError:
    pass


def pid_of(x):
    return os.getpid()


one = IterableSource(range(5)).dask_map(linear_fn, a=2).materialize_dask().collect()
parts = IterableSource(range(7)).dask_map(square).dask_map(linear_fn).materialize_dask(partition_size=3).collect()
pids = IterableSource(range(4)).dask_map(pid_of).materialize_dask().collect()
assert one == [1, 3, 5, 7, 9], one
assert parts == [linear_fn(square(x)) for x in range(7)], parts
assert pids == [os.getpid()] * 4, pids  # computed here, by dask's local scheduler
print("ok")
"""


def test_without_a_client_tasks_run_on_the_local_scheduler_in_a_fresh_process():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([sys.executable, "-c", LOCAL_SCHEDULER_RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.split()[-1] == "ok", proc.stderr[-2000:]
