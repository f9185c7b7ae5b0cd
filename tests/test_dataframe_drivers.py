"""Data-frame drivers (csv, parquet, feather, excel) on real files that pandas writes into tmp_path or memory://:
row content and order, lazy and re-iterable streams, pickling, read_kwargs/storage_options, the dask engine."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from squirrel_graph.driver import FileDriver, IterDriver
from squirrel_graph.driver.csv import CsvDriver
from squirrel_graph.driver.data_frame import ENGINE, DataFrameDriver
from squirrel_graph.driver.excel import ExcelDriver
from squirrel_graph.driver.feather import FeatherDriver
from squirrel_graph.driver.parquet import ParquetDriver
from squirrel_graph.errors import stage_of

ROWS = [(0, 1, "a", 0.5), (1, 2, "b", 1.5), (2, 3, "c", 2.5)]  # (Index, x, name, w)


@pytest.fixture
def pd():
    return pytest.importorskip("pandas")


def frame(pd, n: int = 3):
    return pd.DataFrame({"x": list(range(1, n + 1)), "name": [chr(ord("a") + i) for i in range(n)]}).assign(
        w=lambda d: d["x"] - 0.5
    )


def write_csv(df, path):
    df.to_csv(path, index=False)


def write_parquet(df, path):
    df.to_parquet(path, index=False)


def write_feather(df, path):
    df.to_feather(path)


def write_excel(df, path):
    df.to_excel(path, index=False)


# (driver class, writer, file suffix, the extra library the format needs)
FORMATS = {
    "csv": (CsvDriver, write_csv, "csv", None),
    "parquet": (ParquetDriver, write_parquet, "parquet", "pyarrow"),
    "feather": (FeatherDriver, write_feather, "feather", "pyarrow"),
    "excel": (ExcelDriver, write_excel, "xlsx", "openpyxl"),
}


@pytest.fixture(params=sorted(FORMATS))
def fmt(request, pd):
    cls, writer, suffix, extra = FORMATS[request.param]
    if extra:
        pytest.importorskip(extra)
    return request.param, cls, writer, suffix


def as_tuples(rows):
    return [tuple(r) for r in rows]


# ------------------------------------------------------------------------------------------------ content
def test_every_format_streams_its_rows_in_order_as_namedtuples_with_an_index(fmt, pd, tmp_path):
    name, cls, writer, suffix = fmt
    path = tmp_path / f"data.{suffix}"
    writer(frame(pd), path)
    driver = cls(str(path))
    assert driver.name == name
    rows = list(driver.get_iter())
    assert as_tuples(rows) == ROWS
    assert rows[0]._fields == ("Index", "x", "name", "w")
    assert (rows[1].x, rows[1].name, rows[1].w) == (2, "b", 1.5)
    df = driver.get_df()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["x", "name", "w"] and df["x"].tolist() == [1, 2, 3]


def test_the_stream_is_re_iterable_and_reads_the_file_again_each_time(fmt, pd, tmp_path):
    _, cls, writer, suffix = fmt
    path = tmp_path / f"data.{suffix}"
    writer(frame(pd), path)
    stream = cls(path).get_iter()  # a pathlib.Path is accepted too
    assert as_tuples(stream) == ROWS
    assert as_tuples(stream) == ROWS  # squirrel-core's stream was a one-shot iterator (quirk 12)
    writer(frame(pd, 5), path)
    assert [r.x for r in stream] == [1, 2, 3, 4, 5]


def test_the_stream_pickles_and_the_copy_reads_the_same_rows(fmt, pd, tmp_path):
    _, cls, writer, suffix = fmt
    path = tmp_path / f"data.{suffix}"
    writer(frame(pd), path)
    stream = cls(str(path)).get_iter().map(tuple)
    list(stream)  # pickling after a run works too (no run state travels)
    copy = pickle.loads(pickle.dumps(stream))
    assert list(copy) == ROWS
    assert list(copy) == ROWS


def test_get_iter_reads_nothing_until_iterated(fmt, pd, tmp_path):
    _, cls, writer, suffix = fmt
    path = tmp_path / f"later.{suffix}"
    stream = cls(str(path)).get_iter()  # the file does not exist yet
    with pytest.raises(FileNotFoundError) as info:
        list(stream)
    assert cls.__name__ in (stage_of(info.value) or "")  # the error note names the driver that failed to read
    writer(frame(pd), path)
    assert as_tuples(stream) == ROWS


def test_itertuples_kwargs_reach_df_itertuples(pd, tmp_path):
    path = tmp_path / "data.csv"
    write_csv(frame(pd), path)
    driver = CsvDriver(str(path))
    rows = list(driver.get_iter(itertuples_kwargs={"index": False, "name": "Row"}))
    assert [type(r).__name__ for r in rows] == ["Row"] * 3
    assert rows[0]._fields == ("x", "name", "w")
    assert as_tuples(rows) == [r[1:] for r in ROWS]
    plain = list(driver.get_iter(itertuples_kwargs={"name": None}))
    assert plain == ROWS and type(plain[0]) is tuple
    assert pickle.loads(pickle.dumps(plain)) == ROWS  # plain tuples can cross process boundaries


def test_read_kwargs_from_the_constructor_are_overridden_by_the_call(pd, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x;name;w\n1;a;0.5\n2;b;1.5\n")
    driver = CsvDriver(str(path), read_kwargs={"sep": ";"})
    assert driver.read_kwargs == {"sep": ";"}
    assert list(driver.get_df().columns) == ["x", "name", "w"]
    assert list(driver.get_df(usecols=["name"]).columns) == ["name"]
    assert list(driver.get_df(sep=",").columns) == ["x;name;w"]  # the call wins over the constructor
    rows = list(driver.get_iter(read_kwargs={"usecols": ["x", "w"]}))
    assert rows[0]._fields == ("Index", "x", "w") and as_tuples(rows) == [(0, 1, 0.5), (1, 2, 1.5)]
    assert driver.read_kwargs == {"sep": ";"}  # the call did not change the driver


def test_df_hooks_run_in_order_on_get_df_and_get_iter(pd, tmp_path):
    path = tmp_path / "data.csv"
    write_csv(frame(pd), path)

    def keep_odd(df):
        return df[df["x"] % 2 == 1]

    def add_y(df):
        return df.assign(y=df["x"] * 10)

    driver = CsvDriver(str(path), df_hooks=[keep_odd, add_y])
    assert driver.get_df()["y"].tolist() == [10, 30]
    rows = list(driver.get_iter())
    assert [(r.x, r.y) for r in rows] == [(1, 10), (3, 30)]
    assert [r.Index for r in rows] == [0, 2]


def test_memory_urls_are_read_through_fsspec(pd):
    pytest.importorskip("pyarrow")
    fsspec = pytest.importorskip("fsspec")
    base = f"memory://sg-df-{uuid.uuid4().hex}"
    try:
        write_csv(frame(pd), f"{base}/data.csv")
        write_parquet(frame(pd), f"{base}/data.parquet")
        for cls, url in ((CsvDriver, f"{base}/data.csv"), (ParquetDriver, f"{base}/data.parquet")):
            stream = cls(url).get_iter()
            assert as_tuples(stream) == ROWS
            assert as_tuples(pickle.loads(pickle.dumps(stream))) == ROWS
    finally:
        fsspec.filesystem("memory").rm(base, recursive=True)


class LockedFS:
    """Placeholder until ``locked_fs`` builds the real class (fsspec is optional here)."""


def _locked_fs_class():
    """A memory filesystem that only opens with ``storage_options={"token": LockedFS.token}`` (module level, so dask
    can tokenize and pickle it)."""
    global LockedFS
    from fsspec.implementations.memory import MemoryFileSystem

    if issubclass(LockedFS, MemoryFileSystem):
        return LockedFS

    class _Locked(MemoryFileSystem):
        protocol = "sglocked"
        cachable = False
        token = ""

        def __init__(self, *args, token=None, **kwargs):
            if token != type(self).token:
                raise PermissionError(f"sglocked: wrong token {token!r}")
            super().__init__(*args, **kwargs)

        @classmethod
        def _strip_protocol(cls, path):
            return super()._strip_protocol(str(path).removeprefix("sglocked://"))

    _Locked.__name__ = _Locked.__qualname__ = "LockedFS"
    LockedFS = _Locked
    return LockedFS


@pytest.fixture
def locked_fs():
    """Registers the ``sglocked://`` filesystem with a fresh token; yields (protocol, token, root folder)."""
    fsspec = pytest.importorskip("fsspec")
    cls = _locked_fs_class()
    cls.token = uuid.uuid4().hex
    fsspec.register_implementation("sglocked", cls, clobber=True)
    fs = cls(token=cls.token)
    root = f"/sg-df-{uuid.uuid4().hex}"
    try:
        yield "sglocked", cls.token, root
    finally:
        fs.rm(root, recursive=True)


def test_storage_options_are_passed_to_pandas_dask_and_open(pd, locked_fs):
    pytest.importorskip("dask.dataframe")
    protocol, token, root = locked_fs
    url = f"{protocol}://{root}/data.csv"
    frame(pd).to_csv(url, index=False, storage_options={"token": token})
    with pytest.raises(PermissionError):
        list(CsvDriver(url).get_iter())  # without the token the filesystem refuses
    import dask

    # the sglocked filesystem lives in this process's memory: keep dask off any distributed client a test left
    with dask.config.set(scheduler="sync"):
        for engine in ("pandas", "dask"):
            driver = CsvDriver(url, storage_options={"token": token}, engine=engine)
            assert as_tuples(driver.get_iter()) == ROWS
            assert as_tuples(pickle.loads(pickle.dumps(driver.get_iter()))) == ROWS
    with CsvDriver(url, storage_options={"token": token}).open() as f:  # FileDriver.open gets them too
        assert f.readline().strip() == "x,name,w"


# ------------------------------------------------------------------------------------------------ dask engine
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")  # inside dask's parquet reader
@pytest.mark.parametrize("name", ["csv", "parquet"])
def test_the_dask_engine_reads_a_dask_dataframe_with_the_same_rows(name, pd, tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    cls, writer, suffix, extra = FORMATS[name]
    if extra:
        pytest.importorskip(extra)
    path = tmp_path / f"data.{suffix}"
    writer(frame(pd), path)
    driver = cls(str(path), engine="dask", read_kwargs={"columns": ["x", "name"]} if name == "parquet" else None)
    assert isinstance(driver.get_df(), dd.DataFrame)
    stream = driver.get_iter()
    expected = [r[:3] for r in ROWS] if name == "parquet" else ROWS
    assert as_tuples(stream) == expected
    assert as_tuples(stream) == expected
    assert as_tuples(pickle.loads(pickle.dumps(stream))) == expected


@pytest.mark.parametrize("cls", [FeatherDriver, ExcelDriver])
def test_formats_dask_cannot_read_refuse_the_dask_engine(cls):
    with pytest.raises(ValueError, match=r"engine=.*'dask'"):
        cls("x.bin", engine="dask")


# ------------------------------------------------------------------------------------------------ plan integration
def test_explain_names_the_driver_and_file_and_splits_and_monitor_work(pd, tmp_path):
    path = tmp_path / "data.csv"
    write_csv(frame(pd, 6), path)
    stream = CsvDriver(str(path)).get_iter()
    text = str(stream.explain())
    assert "source(CsvDriver('..." in text and "_0/data.csv').rows())" in text  # a long path keeps its end
    assert "source(CsvDriver('d.csv').rows())" in str(CsvDriver("d.csv").get_iter().explain())
    assert [r.x for r in stream.split_by_worker_pytorch()] == [1, 2, 3, 4, 5, 6]  # one worker: everything
    calls = []
    monitored = stream.map(tuple).monitor(calls.append, every=1, window_size=2)
    assert [r[1] for r in monitored] == [1, 2, 3, 4, 5, 6]
    assert calls and all(any("IOPS" in k for k in c) for c in calls)


def test_dataloader_workers_each_read_their_share_of_the_rows(pd, tmp_path):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    path = tmp_path / "data.csv"
    write_csv(frame(pd, 8), path)
    ds = (
        CsvDriver(str(path))
        .get_iter(itertuples_kwargs={"name": None})
        .split_by_worker_pytorch()
        .map(tuple)
        .to_torch_iterable()
    )
    got = [int(row[1]) for row in DataLoader(ds, num_workers=2, batch_size=None)]
    assert Counter(got) == Counter(range(1, 9))  # every row exactly once over the two workers


# ------------------------------------------------------------------------------------------------ errors and API
def test_an_unknown_engine_is_a_value_error_naming_the_argument():
    with pytest.raises(ValueError, match=r"CsvDriver\(engine=\.\.\.\).*'spark'"):
        CsvDriver("x.csv", engine="spark")


def test_bad_arguments_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"ParquetDriver\(url=\.\.\.\)"):
        ParquetDriver("")
    with pytest.raises(TypeError, match=r"CsvDriver\(read_kwargs=\.\.\.\)"):
        CsvDriver("x.csv", read_kwargs=["sep"])
    with pytest.raises(TypeError, match=r"CsvDriver\(storage_options=\.\.\.\)"):
        CsvDriver("x.csv", storage_options="anon")
    with pytest.raises(TypeError, match=r"CsvDriver\(df_hooks=\.\.\.\)"):
        CsvDriver("x.csv", df_hooks=["not callable"])
    with pytest.raises(TypeError, match=r"get_iter\(itertuples_kwargs=\.\.\.\)"):
        CsvDriver("x.csv").get_iter(itertuples_kwargs=["index"])
    with pytest.raises(TypeError, match=r"get_iter\(read_kwargs=\.\.\.\)"):
        CsvDriver("x.csv").get_iter(read_kwargs="sep=;")
    with pytest.raises(TypeError):
        ExcelDriver("x.xlsx", {"anon": True})  # as in squirrel-core, Excel takes only the url positionally
    with pytest.raises(TypeError, match="abstract"):
        DataFrameDriver("x.csv")  # type: ignore[abstract]


def test_signatures_and_types_match_squirrel_core(tmp_path):
    d = CsvDriver("x.csv", {"anon": True}, "dask", None, {"sep": ";"})
    assert (d.url, d.storage_options, d.engine, d.df_hooks, d.read_kwargs) == (
        "x.csv",
        {"anon": True},
        "dask",
        [],
        {"sep": ";"},
    )
    assert isinstance(d, FileDriver) and isinstance(d, IterDriver) and isinstance(d, DataFrameDriver)
    assert d.catalog is None
    assert set(ENGINE.__args__) == {"pandas", "dask"}
    assert [c.name for c in (CsvDriver, ParquetDriver, FeatherDriver, ExcelDriver)] == [
        "csv",
        "parquet",
        "feather",
        "excel",
    ]
    assert ExcelDriver("x.xlsx", storage_options={"a": 1}).storage_options == {"a": 1}


def test_a_missing_pandas_is_an_import_error_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` raise ImportError
    stream = CsvDriver(str(tmp_path / "x.csv")).get_iter()  # building the stream needs no pandas
    with pytest.raises(ImportError, match=r"CsvDriver needs pandas: pip install 'squirrel_graph\[dataframe\]'"):
        list(stream)
    with pytest.raises(ImportError, match=r"squirrel_graph\[dataframe\]"):
        FeatherDriver("x.feather").get_df()


def test_a_missing_dask_is_an_import_error_naming_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dask.dataframe", None)
    with pytest.raises(ImportError, match=r"CsvDriver\(engine='dask'\) needs dask\.dataframe: .*\[dataframe\]"):
        CsvDriver(str(tmp_path / "x.csv"), engine="dask").get_df()


def test_the_modules_import_without_pandas_or_dask():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pandas', 'dask', 'pyarrow'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import squirrel_graph.io.dataframe, squirrel_graph.io.source_combiner\n"
        "from squirrel_graph.driver.csv import CsvDriver\n"
        "from squirrel_graph.driver.source_combiner import SourceCombiner\n"
        "s = CsvDriver('x.csv').get_iter()\n"
        "try:\n"
        "    list(s)\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR', e)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'dask')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "IMPORT-ERROR CsvDriver needs pandas: pip install 'squirrel_graph[dataframe]'" in out.stdout
    assert out.stdout.strip().endswith("[]")
