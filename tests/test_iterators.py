"""The plain generator helpers of ``squirrel_graph.iterstream.iterators`` behave as squirrel-core's did
(reference §2 and its test list), called directly the way migrating code calls them."""

from __future__ import annotations

import numpy as np
import pytest

from squirrel_graph.iterstream.iterators import (
    batched_,
    filter_,
    flatten_,
    getsize,
    map_,
    sliding_,
    take_,
    zip_index_,
)


def test_batched_yields_lists_and_drops_or_keeps_the_short_last_batch():
    assert list(batched_(range(7), 3)) == [[0, 1, 2], [3, 4, 5]]
    assert list(batched_(range(7), 3, drop_last_if_not_full=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched_(range(6), 3, collation_fn=sum)) == [3, 12]
    assert list(batched_(range(6), 3, drop_last_if_not_full=False)) == [[0, 1, 2], [3, 4, 5]]  # no empty batch
    assert list(batched_(range(5), 0)) == []
    assert list(batched_(range(45))) == [list(range(20)), list(range(20, 40))]  # default batch size 20
    with pytest.raises(ValueError, match="batchsize must be >= 0, got -1"):
        list(batched_(range(5), -1))


def test_take_never_pulls_more_than_n_from_a_shared_iterator():
    it = iter([1, 2, 3, 4, 5])
    assert list(take_(it, 2)) == [1, 2]
    assert list(take_(it, 2)) == [3, 4]
    assert list(take_(range(3), 0)) == []


def test_map_filter_flatten_zip_index():
    assert list(map_(range(4), lambda x: x * 3)) == [0, 3, 6, 9]
    assert list(filter_(range(6), lambda x: x % 2)) == [1, 3, 5]
    assert list(filter_([0, "", None, 2], lambda x: x)) == [2]  # truthiness, not `is True`
    assert list(flatten_([[1, 2], [], (3,)])) == [1, 2, 3]
    assert list(zip_index_("ab")) == [(0, "a"), (1, "b")]
    assert list(zip_index_("ab", pad_length=3)) == [("000", "a"), ("001", "b")]
    assert list(zip_index_(range(12), pad_length=1))[-1] == ("11", 11)  # never truncated


def test_getsize_counts_array_bytes_raw_bytes_and_pickled_size_otherwise():
    assert getsize(np.zeros(10, dtype=np.float32)) == 40
    assert getsize(b"abcd") == 4 and getsize(bytearray(3)) == 3 and getsize(memoryview(b"xy")) == 2
    small, big = getsize({"a": 1}), getsize({"a": list(range(100))})
    assert 0 < small < big
    assert all(getsize(x) > 0 for x in ({}, [], 0, ""))


def test_sliding_windows_stride_and_partial_tails():
    assert list(sliding_(range(5), 3, deepcopy=False)) == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert list(sliding_(range(6), 2, deepcopy=False, stride=2)) == [[0, 1], [2, 3], [4, 5]]
    tail = list(sliding_(range(5), 3, deepcopy=False, stride=2, drop_last_if_not_full=False))
    assert tail == [[0, 1, 2], [2, 3, 4], [4]]
    assert list(sliding_(range(5), 3, deepcopy=False, stride=2, drop_last_if_not_full=False, min_window_size=2)) == [
        [0, 1, 2],
        [2, 3, 4],
    ]
    padded = list(
        sliding_(range(4), 3, deepcopy=False, stride=2, drop_last_if_not_full=False, fill_nan_on_partial=True)
    )
    assert padded == [[0, 1, 2], [2, 3, None]]
    items = [[1], [2], [3]]
    copied = list(sliding_(items, 2, deepcopy=True))
    copied[0][0].append(9)
    assert items[0] == [1]  # deepcopy=True hands out copies
    shared = list(sliding_(items, 2, deepcopy=False))
    shared[0][0].append(9)
    assert items[0] == [1, 9]
