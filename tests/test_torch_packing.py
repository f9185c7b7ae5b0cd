"""to_torch_iterable(pack=True): packed batches through real DataLoader workers deliver what unpacked ones do."""

from __future__ import annotations

import pickle
from collections import namedtuple
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from squirrel_graph import IterableSource
from squirrel_graph.runtime.packing import PackedBatch, pack_batch

Point = namedtuple("Point", ["x", "y"])


def rich_sample(i):
    """One field of each kind: packed (arrays, numpy scalars, tensors of one shape/dtype) and left as they are."""
    return {
        "image": np.full((3, 2), i, np.float32),
        "label": np.int64(i),
        "weights": torch.full((2,), float(i), dtype=torch.float64),
        "id": i,
        "name": f"s{i}",
        "ragged": np.arange(i % 3 + 1, dtype=np.int32),
        "mixed": np.zeros(2, np.float32 if i % 4 < 2 else np.float64),  # alternates within a worker's batch
        "nested": {"x": np.full(2, i, np.int16)},
        "text": np.array(["a", "b"]),
    }


PACKED_FIELDS = {"image", "label", "weights"}
LEFT_TENSOR_FIELDS = {"ragged", "mixed"}  # tensors in the loop, one storage each


def loader_batches(ds, epochs=1, **kw):
    loader = DataLoader(ds, batch_size=None, **kw)
    return [list(loader) for _ in range(epochs)]


def assert_same(a, b, where="item"):
    """Same structure, types, dtypes and values."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, torch.Tensor):
        assert (a.dtype, a.shape) == (b.dtype, b.shape) and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def n_storages(values):
    return len({v.untyped_storage().data_ptr() for v in values})


def rich_stream(pack, n=24):
    return (
        IterableSource([rich_sample(i) for i in range(n)])
        .split_by_worker_pytorch()
        .batched(4)
        .to_torch_iterable(pack=pack)
    )


# ------------------------------------------------------------------------------------- through DataLoader workers


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_packed_items_equal_unpacked_ones_in_persistent_workers(context):
    packed = rich_stream(True)
    # the parent compiles, explains and runs the stream before the workers start: that decides nothing for them
    assert "pack_batches" in str(packed.explain())
    first = next(iter(packed))
    assert isinstance(first[0]["image"], np.ndarray) and isinstance(first[0]["label"], np.int64)
    kw = {"num_workers": 2, "persistent_workers": True, "multiprocessing_context": context}
    expected = loader_batches(rich_stream(False), epochs=1, num_workers=2, multiprocessing_context="fork")[0]
    got = loader_batches(packed, epochs=2, **kw)
    assert len(expected) == 6
    for epoch in got:
        assert_same(epoch, expected)
        for batch in epoch:
            assert type(batch) is list and all(type(item) is dict for item in batch)
            for field in PACKED_FIELDS:  # one storage per field and batch
                assert n_storages(item[field] for item in batch) == 1, field
            for field in LEFT_TENSOR_FIELDS:
                assert n_storages(item[field] for item in batch) == len(batch), field
            assert isinstance(batch[0]["text"], np.ndarray) and isinstance(batch[0]["nested"]["x"], torch.Tensor)
    for batch in expected:
        assert n_storages(item["image"] for item in batch) == len(batch)


def layout_samples():
    """Per DataLoader worker (items alternate between 2 workers), batches of 4 items of one layout each:
    tuples, namedtuples, bare arrays, then dicts and tuples mixed."""
    kinds = [
        lambda i: (np.full(2, i, np.float32), i),
        lambda i: Point(np.full(2, i, np.int32), np.float64(i)),
        lambda i: np.full((2, 2), i, np.uint8),
        lambda i: {"x": np.full(2, i, np.float32)} if i % 4 < 2 else (np.full(2, i, np.float32),),
    ]
    return [kind(i) for kind in kinds for i in range(8 * kinds.index(kind), 8 * kinds.index(kind) + 8)]


def test_layouts_tuples_namedtuples_bare_arrays_pack_and_mixed_batches_pass_through():
    def stream(pack):
        return IterableSource(layout_samples()).split_by_worker_pytorch().batched(4).to_torch_iterable(pack=pack)

    expected = loader_batches(stream(False), num_workers=2)[0]
    got = loader_batches(stream(True), num_workers=2)[0]
    assert_same(got, expected)
    tuples, named, bare, mixed = got[0:2], got[2:4], got[4:6], got[6:8]
    for batch in tuples:  # DataLoader's conversion turns tuples into lists, packed or not
        assert type(batch[0]) is list and n_storages(item[0] for item in batch) == 1
    for batch in named:
        assert type(batch[0]) is Point and n_storages(item.x for item in batch) == 1
        assert n_storages(item.y for item in batch) == 1 and batch[0].y.dtype == torch.float64
    for batch in bare:
        assert n_storages(batch) == 1 and batch[0].dtype == torch.uint8
    for batch in mixed:
        assert n_storages(item["x"] if isinstance(item, dict) else item[0] for item in batch) == len(batch)


def reverse(batch):
    return batch[::-1]


@pytest.mark.parametrize(
    "tail",
    [
        lambda s: s.batched(4, collation_fn=list),
        lambda s: s.batched(4).map(reverse),
    ],
    ids=["collation_fn", "map_after_batched"],
)
def test_packing_is_inactive_unless_batches_come_from_batched_without_collation_fn(tail):
    def stream(pack):
        return tail(IterableSource([rich_sample(i) for i in range(16)]).split_by_worker_pytorch()).to_torch_iterable(
            pack=pack
        )

    assert "inactive, batches pass unchanged" in str(stream(True).explain())
    expected = loader_batches(stream(False), num_workers=2)[0]
    got = loader_batches(stream(True), num_workers=2)[0]
    assert_same(got, expected)
    assert all(n_storages(item["image"] for item in batch) == len(batch) for batch in got)


def test_outside_a_worker_packing_never_happens():
    packed = rich_stream(True, n=8)
    assert_same(packed.collect(), rich_stream(False, n=8).collect())  # numpy arrays stay numpy arrays
    got = loader_batches(packed, num_workers=0)[0]
    assert_same(got, loader_batches(rich_stream(False, n=8), num_workers=0)[0])
    assert all(n_storages(item["image"] for item in batch) == len(batch) for batch in got)


# ------------------------------------------------------------------------------------- in one process


def test_a_pickled_packed_batch_sends_each_packed_tensor_once_and_arrives_as_a_plain_list(monkeypatch):
    batch = [{"a": np.full(3, i, np.float32), "b": i} for i in range(5)]
    packed = pack_batch(batch)
    assert isinstance(packed, PackedBatch) and packed[0]["a"].is_shared()
    assert n_storages(item["a"] for item in packed) == 1 and batch[0]["a"].dtype == np.float32  # input untouched
    packed[2] = {**packed[2], "a": torch.zeros(3)}  # a custom collate_fn replaced one value: it travels as it is
    sent = []
    reduce_tensor = ForkingPickler._extra_reducers[torch.Tensor]
    monkeypatch.setitem(ForkingPickler._extra_reducers, torch.Tensor, lambda t: sent.append(t) or reduce_tensor(t))
    got = pickle.loads(ForkingPickler.dumps(packed))
    assert sorted(tuple(t.shape) for t in sent) == [(3,), (5, 3)]  # the packed tensor once, the replaced value
    assert type(got) is list and [item["b"] for item in got] == list(range(5))
    assert [item["a"].tolist() for item in got] == [[i] * 3 for i in (0, 1)] + [[0.0] * 3] + [[i] * 3 for i in (3, 4)]
    assert n_storages(got[i]["a"] for i in (0, 1, 3, 4)) == 1 and n_storages([got[1]["a"], got[2]["a"]]) == 2


def test_batches_that_cannot_pack_are_returned_as_they_are():
    ragged = [{"a": np.zeros(i + 1)} for i in range(3)]
    cases = [ragged, [np.zeros(2), np.zeros(3)], [1, 2], [{"a": 1}, (1,)], [np.zeros(2)], [np.zeros(0), np.zeros(0)]]
    cases.append([np.zeros(2, dtype=">f4"), np.zeros(2, dtype=">f4")])  # torch refuses non-native byte order
    cases.append([torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)])
    for batch in cases:
        assert pack_batch(batch) is batch


def test_explain_shows_the_packing_stage_and_hints_at_it_where_it_would_apply():
    source = IterableSource(range(8))
    packed = source.batched(2).prefetch(2).to_torch_iterable(pack=True)
    text = str(packed.explain())
    assert "pack_batches  <- " in text and "its batches come from batched(2) without collation_fn" in text
    assert "== Hints ==" not in text
    hinted = source.batched(2).prefetch(2).to_torch_iterable().explain()
    assert "batched(2) without collation_fn; to_torch_iterable(pack=True) would send" in str(hinted)
    picture = hinted.to_graphviz().source  # the notes box under the plans lists the hint
    assert "<B>Hints</B>" in picture and "to_torch_iterable(pack=True) would send" in picture
    for no_hint in (source.batched(2, collation_fn=list).to_torch_iterable(), source.to_torch_iterable()):
        assert "== Hints ==" not in str(no_hint.explain())


def test_pack_is_checked_kept_by_compile_and_pickling_and_leaves_source_alone():
    upstream = IterableSource(range(6)).batched(2)
    ds = upstream.to_torch_iterable(pack=True)
    assert ds.source is upstream and ds.pack is True
    with pytest.raises(TypeError, match=r"to_torch_iterable\(pack=...\): expected a bool"):
        upstream.to_torch_iterable(pack=1)
    assert "pack_batches" in str(ds.compile(optimize=False).explain(stage="physical"))
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.pack is True and "pack_batches" in str(clone.explain()) and clone.collect() == ds.collect()


def test_a_packing_failure_names_the_stage(monkeypatch):
    from squirrel_graph.runtime import packing

    def no_space(self):
        raise RuntimeError("No space left on device")

    monkeypatch.setattr(packing, "in_dataloader_worker", lambda: True)  # as in a worker
    monkeypatch.setattr(torch.Tensor, "share_memory_", no_space)
    ds = IterableSource([np.zeros(2)] * 4).batched(2).to_torch_iterable(pack=True)
    with pytest.raises(RuntimeError, match="No space left") as info:
        ds.collect()
    assert info.value.__notes__ == ["squirrel_graph: raised in stage 'pack_batches' (node 2:pack_batches)"]


class Pair(tuple):
    """A tuple subclass that is no namedtuple: its copies might not keep its type."""


def test_tuples_lists_namedtuples_and_plain_cpu_tensors_pack_in_one_process():
    cases = [
        [(np.full(2, i, np.float32), i) for i in range(3)],
        [[np.full(2, i, np.float32), i] for i in range(3)],
        [Point(np.full(2, i, np.int32), np.float64(i)) for i in range(3)],
        [torch.full((2,), float(i)) for i in range(3)],
    ]
    for batch in cases:
        packed = pack_batch(batch)
        assert isinstance(packed, PackedBatch)
        assert [type(item) for item in packed] == [type(item) for item in batch]
        first = [item if isinstance(item, torch.Tensor) else item[0] for item in packed]
        assert [t.tolist() for t in first] == [[float(i)] * 2 for i in range(3)]
        assert n_storages(first) == 1 and first[0].is_shared()
    named = pack_batch(cases[2])
    assert n_storages(item.y for item in named) == 1 and named[1].y.item() == 1.0
    assert [item[1] for item in pack_batch(cases[0])] == [0, 1, 2]  # ints are no arrays: left as they are
    pairs = [Pair((np.full(2, i, np.float32),)) for i in range(3)]
    assert pack_batch(pairs) is pairs


def test_the_packing_stage_passes_batches_that_are_no_lists_and_packs_the_lists_after_them():
    from squirrel_graph.runtime import packing

    one = (np.zeros(2), np.ones(2))
    out = list(packing._packed(iter([one, [np.zeros(2), np.ones(2)]]), "2:pack_batches"))
    assert out[0] is one and len(out) == 2
    assert isinstance(out[1], PackedBatch) and [t.tolist() for t in out[1]] == [[0.0, 0.0], [1.0, 1.0]]


def test_a_copied_packed_batch_keeps_its_fields_and_still_sends_each_packed_tensor_once(monkeypatch):
    """DataLoader's default_convert copies the batch before converting its items: the copy must stay packed."""
    import copy

    packed = pack_batch([{"a": np.full(2, i, np.float32)} for i in range(3)])
    copied = copy.copy(packed)
    assert type(copied) is PackedBatch and copied is not packed and list(copied) == list(packed)
    assert copied.layout == packed.layout and copied.fields is packed.fields
    sent = []
    reduce_tensor = ForkingPickler._extra_reducers[torch.Tensor]
    monkeypatch.setitem(ForkingPickler._extra_reducers, torch.Tensor, lambda t: sent.append(t) or reduce_tensor(t))
    got = pickle.loads(ForkingPickler.dumps(copied))
    assert [tuple(t.shape) for t in sent] == [(3, 2)] and [item["a"].tolist() for item in got] == [
        [0.0] * 2,
        [1.0] * 2,
        [2.0] * 2,
    ]


def test_an_inactive_packing_stage_passes_the_batches_on_in_a_worker_too(monkeypatch):
    from squirrel_graph.runtime import packing

    monkeypatch.setattr(packing, "in_dataloader_worker", lambda: True)  # as in a worker
    batches = IterableSource(range(4)).batched(2).map(reverse).to_torch_iterable(pack=True).collect()
    assert batches == [[1, 0], [3, 2]] and all(type(b) is list for b in batches)
