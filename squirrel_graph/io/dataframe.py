"""Data-frame drivers (squirrel-core's CsvDriver, ParquetDriver, FeatherDriver, ExcelDriver): one file read into a
pandas or dask DataFrame, streamed row by row as namedtuples.

``get_iter`` is a lazy plan source: the file is read when the stream is iterated, once per iteration, so the stream
can be re-iterated, explained and pickled into DataLoader workers. pandas and dask are imported only when reading.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from squirrel_graph.io.drivers import FileDriver, IterDriver
from squirrel_graph.stream.sources import IterableSource

if TYPE_CHECKING:
    from squirrel_graph.stream.composable import Composable

__all__ = ["ENGINE", "CsvDriver", "DataFrameDriver", "ExcelDriver", "FeatherDriver", "ParquetDriver"]

ENGINE = Literal["dask", "pandas"]
_ENGINES = ("pandas", "dask")
_EXTRA_HINT = "pip install 'squirrel_graph[dataframe]'"


def _short(url: str) -> str:
    return url if len(url) <= 40 else "..." + url[-37:]


def import_pandas(owner: str) -> Any:
    """``pandas``, or an ImportError naming ``owner`` and the extra that installs it."""
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(f"{owner} needs pandas: {_EXTRA_HINT}") from exc
    return pandas


def import_dask_dataframe(owner: str) -> Any:
    """``dask.dataframe``, or an ImportError naming ``owner`` and the extra that installs it."""
    try:
        import dask.dataframe
    except ImportError as exc:
        raise ImportError(f"{owner}(engine='dask') needs dask.dataframe: {_EXTRA_HINT}") from exc
    return dask.dataframe


class _DataFrameRows:
    """The picklable callable behind ``get_iter``'s source: reads the frame, returns its row iterator; its
    ``__name__`` names the driver and file, so explain and error notes say what the source reads."""

    def __init__(self, driver: DataFrameDriver, itertuples_kwargs: dict[str, Any], read_kwargs: dict[str, Any]) -> None:
        self.driver = driver
        self.itertuples_kwargs = itertuples_kwargs
        self.read_kwargs = read_kwargs
        self.__name__ = f"{driver._describe()}.rows"

    def __call__(self) -> Iterator[Any]:
        return iter(self.driver.get_df(**self.read_kwargs).itertuples(**self.itertuples_kwargs))

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


class DataFrameDriver(FileDriver, IterDriver):
    """Base of the drivers that read one file into a DataFrame; subclasses implement :meth:`_read`."""

    #: engines a subclass can read with (Feather and Excel: pandas only)
    engines: tuple[str, ...] = _ENGINES

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: dict[str, Any] | None = None,
        engine: ENGINE = "pandas",
        df_hooks: Iterable[Callable[[Any], Any]] | None = None,
        read_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        cls = type(self).__name__
        if isinstance(url, os.PathLike):
            url = os.fspath(url)
        if not isinstance(url, str) or not url:
            raise ValueError(f"{cls}(url=...): expected a non-empty path or URL, got {url!r}")
        if engine not in _ENGINES:
            raise ValueError(f"{cls}(engine=...): expected one of {list(_ENGINES)}, got {engine!r}")
        if engine not in self.engines:
            raise ValueError(f"{cls}(engine=...): {engine!r} cannot read this format; use one of {list(self.engines)}")
        if storage_options is not None and not isinstance(storage_options, dict):
            raise TypeError(
                f"{cls}(storage_options=...): expected a dict or None, got {type(storage_options).__name__}"
            )
        if read_kwargs is not None and not isinstance(read_kwargs, dict):
            raise TypeError(f"{cls}(read_kwargs=...): expected a dict or None, got {type(read_kwargs).__name__}")
        hooks = list(df_hooks or [])
        bad = [h for h in hooks if not callable(h)]
        if bad:
            raise TypeError(f"{cls}(df_hooks=...): every hook must be callable, got {bad!r}")
        super().__init__(url, storage_options=storage_options, **kwargs)
        self.engine = engine
        self.df_hooks = hooks
        self.read_kwargs = dict(read_kwargs or {})

    def _describe(self) -> str:
        return f"{type(self).__name__}({_short(self.url)!r})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, engine={self.engine!r})"

    @abstractmethod
    def _read(self, **kwargs: Any) -> Any:
        """Read the file with ``self.engine``; ``kwargs`` go to the pandas or dask reader."""

    def get_df(self, **read_kwargs: Any) -> Any:
        """The file as a pandas (or dask) DataFrame after ``df_hooks``; ``read_kwargs`` override the constructor's
        and ``storage_options`` reaches the reader's fsspec filesystem."""
        storage = {"storage_options": self.storage_options} if self.storage_options else {}
        try:
            df = self._read(**{**self.read_kwargs, **storage, **read_kwargs})
        except ImportError as exc:  # e.g. pandas without pyarrow or openpyxl
            if _EXTRA_HINT in str(exc):
                raise
            raise ImportError(f"{self._describe()}: {exc} ({_EXTRA_HINT})") from exc
        for hook in self.df_hooks:
            df = hook(df)
        return df

    def get_iter(  # type: ignore[override]
        self, itertuples_kwargs: dict[str, Any] | None = None, read_kwargs: dict[str, Any] | None = None
    ) -> Composable:
        """Rows as namedtuples of ``df.itertuples(**itertuples_kwargs)`` (an ``Index`` field by default), read when
        iterated and again on every iteration, so the stream is re-iterable (squirrel-core read once, at call time)."""
        # rows of the default namedtuple class do not pickle (DataLoader workers): {"name": None} gives plain tuples
        for arg, value in (("itertuples_kwargs", itertuples_kwargs), ("read_kwargs", read_kwargs)):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{type(self).__name__}.get_iter({arg}=...): expected a dict or None, got {value!r}")
        return IterableSource(_DataFrameRows(self, dict(itertuples_kwargs or {}), dict(read_kwargs or {})))


class CsvDriver(DataFrameDriver):
    """A CSV file: ``pandas.read_csv`` or ``dask.dataframe.read_csv``."""

    name = "csv"

    def _read(self, **kwargs: Any) -> Any:
        if self.engine == "dask":
            return import_dask_dataframe(type(self).__name__).read_csv(self.url, **kwargs)
        return import_pandas(type(self).__name__).read_csv(self.url, **kwargs)


class ParquetDriver(DataFrameDriver):
    """A Parquet file (or dataset): ``pandas.read_parquet`` or ``dask.dataframe.read_parquet``."""

    name = "parquet"

    def _read(self, **kwargs: Any) -> Any:
        if self.engine == "dask":
            return import_dask_dataframe(type(self).__name__).read_parquet(self.url, **kwargs)
        return import_pandas(type(self).__name__).read_parquet(self.url, **kwargs)


class FeatherDriver(DataFrameDriver):
    """A Feather file: ``pandas.read_feather`` (dask cannot read Feather)."""

    name = "feather"
    engines = ("pandas",)

    def _read(self, **kwargs: Any) -> Any:
        return import_pandas(type(self).__name__).read_feather(self.url, **kwargs)


class ExcelDriver(DataFrameDriver):
    """An Excel workbook: ``pandas.read_excel`` (dask cannot read Excel)."""

    name = "excel"
    engines = ("pandas",)

    def __init__(self, url: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(url, **kwargs)

    def _read(self, **kwargs: Any) -> Any:
        return import_pandas(type(self).__name__).read_excel(self.url, **kwargs)
