"""SourceCombiner over a real Catalog whose subsets are jsonl and messagepack stores and CSV files in tmp_path:
round robin with unequal lengths, routing to one subset, seeded sampling, get_df, laziness and pickling."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest

from squirrel_graph.catalog import Catalog, CatalogKey, Source
from squirrel_graph.driver import JsonlDriver, MapDriver, MessagepackDriver
from squirrel_graph.driver.csv import CsvDriver
from squirrel_graph.driver.source_combiner import SourceCombiner
from squirrel_graph.io import plugins
from squirrel_graph.io.drivers import IterDriver
from squirrel_graph.io.plugins import register_driver
from squirrel_graph.stream.sources import IterableSource


class ProbeDriver(IterDriver):
    """Streams the storage_options it was built with (to see what SourceCombiner passes down)."""

    name = "sg_probe"

    def __init__(self, storage_options=None, **kwargs):
        super().__init__(**kwargs)
        self.storage_options = storage_options

    def get_iter(self, **kwargs):
        return IterableSource([self.storage_options])


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """csv, source_combiner and the probe are registered for each test only (another change adds them for good)."""
    monkeypatch.setattr(plugins, "_registered_drivers", list(plugins._registered_drivers))
    monkeypatch.setattr(plugins, "_entry_points", None)
    for cls in (CsvDriver, SourceCombiner, ProbeDriver):
        register_driver(cls)


def key(item):
    """(subset, i) of an item, whether it is a store sample (dict) or a CSV row (namedtuple)."""
    return (item["s"], item["i"]) if isinstance(item, dict) else (item.s, item.i)


def write_store(driver_cls, url, subset, n, per_shard=2):
    store = driver_cls(url).store
    samples = [{"s": subset, "i": i} for i in range(n)]
    for k, start in enumerate(range(0, n, per_shard)):
        store.set(samples[start : start + per_shard], key=f"k{k}")


def write_csv(path, subset, n):
    path.write_text("s,i\n" + "".join(f"{subset},{i}\n" for i in range(n)))


@pytest.fixture
def catalog(tmp_path):
    """train: 5 jsonl samples, val: 2 messagepack samples, test: 3 CSV rows; "all" combines them."""
    pytest.importorskip("pandas")
    cat = Catalog()
    cat["train"] = Source("jsonl", {"url": str(tmp_path / "train")})
    cat["val"] = Source("messagepack", {"url": str(tmp_path / "val")})
    cat["test"] = Source("csv", {"url": str(tmp_path / "test.csv")})
    cat["all"] = Source("source_combiner", {"subsets": {"train": "train", "val": ("val", 1), "test": ["test", -1]}})
    write_store(JsonlDriver, str(tmp_path / "train"), "train", 5)
    write_store(MessagepackDriver, str(tmp_path / "val"), "val", 2)
    write_csv(tmp_path / "test.csv", "test", 3)
    return cat


ROUND_ROBIN = [
    ("train", 0),
    ("val", 0),
    ("test", 0),
    ("train", 1),
    ("val", 1),
    ("test", 1),
    ("train", 2),
    ("test", 2),
    ("train", 3),
    ("train", 4),
]


# ------------------------------------------------------------------------------------------------ round robin
def test_get_iter_takes_one_item_of_each_subset_in_turn_and_goes_on_after_shorter_ones(catalog):
    combiner = catalog["all"].get_driver()
    assert isinstance(combiner, SourceCombiner) and isinstance(combiner, MapDriver)
    assert combiner.catalog is catalog and combiner.subsets == ["train", "val", "test"]
    stream = combiner.get_iter()
    assert [key(x) for x in stream] == ROUND_ROBIN
    assert [key(x) for x in stream] == ROUND_ROBIN  # re-iterable (squirrel-core's was a one-shot iterator)
    assert [key(x) for x in stream.take(4)] == ROUND_ROBIN[:4]  # stopping early is fine
    assert "SourceCombiner(['train', 'val', 'test']).round_robin" in str(stream.explain())


def test_the_combined_stream_pickles(catalog):
    stream = catalog["all"].get_driver().get_iter().map(key)
    copy = pickle.loads(pickle.dumps(stream))
    assert list(copy) == ROUND_ROBIN
    assert list(copy) == ROUND_ROBIN


def test_three_csvs_combine_into_train_val_test(tmp_path):
    pytest.importorskip("pandas")
    cat = Catalog()
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}.csv").write_text(f"name\n{name}\n")
        cat[name] = Source("csv", {"url": str(tmp_path / f"{name}.csv")})
    combiner = SourceCombiner({n: CatalogKey(n, 1) for n in ("train", "val", "test")}, cat)
    assert [row.name for row in combiner.get_iter()] == ["train", "val", "test"]
    # kwargs reach every subset driver's get_iter
    assert list(combiner.get_iter(itertuples_kwargs={"index": False, "name": None})) == [
        ("train",),
        ("val",),
        ("test",),
    ]


def test_get_iter_reads_nothing_until_iterated(catalog, tmp_path):
    (tmp_path / "test.csv").unlink()
    stream = catalog["all"].get_driver().get_iter()
    with pytest.raises(FileNotFoundError):
        list(stream)
    write_csv(tmp_path / "test.csv", "test", 3)
    assert [key(x) for x in stream] == ROUND_ROBIN
    write_store(MessagepackDriver, str(tmp_path / "val"), "val", 4)  # k0 and k1 rewritten with more samples
    assert Counter(s for s, _ in (key(x) for x in stream)) == {"train": 5, "val": 4, "test": 3}


def test_dataloader_workers_share_the_combined_stream(catalog):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    ds = catalog["all"].get_driver().get_iter().map(key).split_by_worker_pytorch().to_torch_iterable()
    got = [tuple(x) for x in DataLoader(ds, num_workers=2, batch_size=None)]
    assert Counter((s, int(i)) for s, i in got) == Counter(ROUND_ROBIN)  # each item exactly once


# ------------------------------------------------------------------------------------------------ routing
def test_get_iter_with_a_subset_is_that_subsets_stream(catalog):
    combiner = catalog["all"].get_driver()
    assert [key(x) for x in combiner.get_iter("val")] == [("val", 0), ("val", 1)]
    rows = list(combiner.get_iter("test", itertuples_kwargs={"index": False}))
    assert rows[0]._fields == ("s", "i") and [tuple(r) for r in rows] == [("test", 0), ("test", 1), ("test", 2)]
    train = combiner.get_iter(subset="train", max_workers=0)
    assert [key(x) for x in train] == [("train", i) for i in range(5)]
    assert [key(x) for x in train] == [("train", i) for i in range(5)]


def test_get_keys_and_get_store_route_to_the_subset_driver(catalog):
    combiner = catalog["all"].get_driver()
    assert list(combiner.keys("train")) == ["k0", "k1", "k2"] and list(combiner.keys("val")) == ["k0"]
    assert list(combiner.get("train", "k2")) == [{"s": "train", "i": 4}]
    store = combiner.get_store("val")
    assert list(store.keys()) == ["k0"] and list(store.get("k0")) == [{"s": "val", "i": 0}, {"s": "val", "i": 1}]
    with pytest.raises(TypeError, match=r"subset 'test' uses driver CsvDriver \('csv'\), which has no store"):
        combiner.get_store("test")


def test_get_df_passes_read_kwargs_by_keyword(catalog):
    pd = pytest.importorskip("pandas")
    combiner = catalog["all"].get_driver()
    df = combiner.get_df("test")
    assert isinstance(df, pd.DataFrame) and df.to_dict("list") == {"s": ["test"] * 3, "i": [0, 1, 2]}
    # squirrel-core called get_df(*kwargs), so this raised a TypeError there
    assert combiner.get_df("test", usecols=["i"], nrows=2).to_dict("list") == {"i": [0, 1]}
    with pytest.raises(TypeError, match=r"subset 'val' uses driver MessagepackDriver .*no get_df"):
        combiner.get_df("val")


def test_storage_options_of_the_combiner_are_merged_into_each_subsets(tmp_path):
    cat = Catalog()
    cat["p"] = Source("sg_probe", {"storage_options": {"a": 1, "b": 1}})
    cat["q"] = Source("sg_probe")
    cat["both"] = Source("source_combiner", {"subsets": ["p", "q"], "storage_options": {"b": 2}})
    combiner = cat["both"].get_driver()
    assert combiner.subsets == ["p", "q"] and combiner.storage_options == {"b": 2}
    assert list(combiner.get_iter()) == [{"a": 1, "b": 2}, {"b": 2}]
    plain = SourceCombiner(["p"], cat)
    assert list(plain.get_iter("p")) == [{"a": 1, "b": 1}]


# ------------------------------------------------------------------------------------------------ sampler
def test_get_iter_sampler_is_reproducible_with_a_seed(catalog):
    combiner = catalog["all"].get_driver()
    first = [key(x) for x in combiner.get_iter_sampler(seed=7)]
    again = [key(x) for x in combiner.get_iter_sampler(seed=7)]
    assert first == again
    assert Counter(first) == Counter(ROUND_ROBIN)  # every item once
    for subset in ("train", "val", "test"):  # each subset keeps its own order
        assert [i for s, i in first if s == subset] == sorted(i for s, i in first if s == subset)
    orders = {tuple(key(x) for x in combiner.get_iter_sampler(seed=s)) for s in range(6)}
    assert len(orders) > 1  # the seed matters
    stream = combiner.get_iter_sampler(seed=7)
    assert [key(x) for x in stream] == first and [key(x) for x in stream] == first  # re-iterable
    assert [key(x) for x in pickle.loads(pickle.dumps(stream))] == first


def test_get_iter_sampler_follows_probs_and_passes_kwargs(catalog, tmp_path):
    combiner = catalog["all"].get_driver()
    heavy = [key(x) for x in combiner.get_iter_sampler(probs=[0.98, 0.01, 0.01], seed=1)]
    assert Counter(heavy) == Counter(ROUND_ROBIN)
    assert [s for s, _ in heavy[:3]].count("train") >= 2
    with pytest.raises(ValueError, match="probs"):
        combiner.get_iter_sampler(probs=[0.5, 0.5])
    stores = SourceCombiner(["train", "val"], catalog)  # kwargs reach every subset's get_iter
    first_shards = [key(x) for x in stores.get_iter_sampler(seed=1, keys_iterable=["k0"], max_workers=0)]
    assert Counter(first_shards) == Counter([("train", 0), ("train", 1), ("val", 0), ("val", 1)])


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_subsets_and_missing_sources_are_key_errors_naming_them(catalog):
    combiner = catalog["all"].get_driver()
    with pytest.raises(KeyError, match=r"unknown subset 'dev'.*\['train', 'val', 'test'\]"):
        combiner.get_iter("dev")
    broken = SourceCombiner({"a": ("train", 9)}, catalog)  # nothing is looked up when building the combiner
    with pytest.raises(KeyError, match=r"subset 'a' refers to catalog source 'train' version 9"):
        broken.get_iter()


def test_bad_constructor_arguments_name_the_argument(catalog):
    with pytest.raises(ValueError, match=r"SourceCombiner\(catalog=\.\.\.\)"):
        SourceCombiner({"a": "train"}, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"SourceCombiner\(subsets=\.\.\.\)"):
        SourceCombiner("train", catalog)
    with pytest.raises(TypeError, match=r"SourceCombiner\(subsets=\.\.\.\): subset 'a'"):
        SourceCombiner({"a": 3}, catalog)
    with pytest.raises(ValueError, match=r"SourceCombiner\(subsets=\.\.\.\): subset 'train' is given twice"):
        SourceCombiner(["train", ("train", 1)], catalog)
    with pytest.raises(ValueError, match=r"SourceCombiner\(subsets=\.\.\.\): at least one"):
        SourceCombiner({}, catalog)
    with pytest.raises(TypeError, match=r"SourceCombiner\(storage_options=\.\.\.\)"):
        SourceCombiner(["train"], catalog, storage_options="anon")


def test_get_source_returns_the_catalog_version(catalog, tmp_path):
    catalog["test"] = Source("csv", {"url": str(tmp_path / "test2.csv")})  # version 2
    pinned = SourceCombiner({"t": CatalogKey("test", 1), "latest": "test"}, catalog)
    assert pinned.get_source("t").version == 1 and pinned.get_source("latest").version == 2
    assert pinned.get_source("t").driver_kwargs == {"url": str(tmp_path / "test.csv")}
