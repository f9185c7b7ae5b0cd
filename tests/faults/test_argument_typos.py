"""Typos are not silent (issue 13, item 6): keywords our own code consumes are checked when the chain is built,
and the error names the argument the user passed, the unknown key and the known ones."""

from __future__ import annotations

import threading

import pytest

from squirrel_graph import Composable
from squirrel_graph.io.drivers import MapDriver, MessagepackDriver


@pytest.fixture
def store_url(tmp_path):
    url = str(tmp_path / "store")
    store = MessagepackDriver(url).store
    store.set([0, 1], key="a")
    store.set([2, 3], key="sub/b")  # a nested key: listed only with keys_kwargs={"nested": True}
    return url


class KeyHook(Composable):
    def __iter__(self):
        yield from self.source


class Recording(MapDriver):
    """A user's MapDriver whose get() takes one keyword and records the thread that fetched each key."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def keys(self, reverse: bool = False) -> list[int]:
        return [2, 1, 0] if reverse else [0, 1, 2]

    def get(self, key: int, scale: int = 1) -> list[int]:
        self.threads.add(threading.current_thread().name)
        return [key * scale]


def _driver(url: str) -> MessagepackDriver:
    return MessagepackDriver(url)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"keys_kwargs": {"nestd": True}}, TypeError, ["keys_kwargs", "'nestd'", "missing_ok, nested", "'nested'"]),
        ({"keys_kwargs": ["nested"]}, TypeError, ["keys_kwargs", "dict"]),
        ({"key_shuffle_kwargs": {"sed": 1}}, TypeError, ["key_shuffle_kwargs", "'sed'", "initial, rng, seed"]),
        ({"item_shuffle_kwargs": {"size": 5}}, TypeError, ["item_shuffle_kwargs", "'size'", "initial, rng, seed"]),
        ({"item_shuffle_kwargs": {"initial": -1}}, ValueError, ["item_shuffle_kwargs", "initial"]),
        ({"key_shuffle_kwargs": {"seed": [1]}}, TypeError, ["key_shuffle_kwargs", "seed"]),
        ({"shuffle_key_buffer": -1}, ValueError, ["get_iter", "shuffle_key_buffer", ">= 0"]),
        ({"shuffle_item_buffer": -5}, ValueError, ["get_iter", "shuffle_item_buffer", ">= 0"]),
        ({"shuffle_key_buffer": 2.5}, TypeError, ["get_iter", "shuffle_key_buffer"]),
        ({"keys_iterable": "a"}, TypeError, ["keys_iterable", "characters", "[key]"]),
        ({"key_hooks": KeyHook}, TypeError, ["key_hooks", "list of hooks"]),
        ({"fetch_timeout": 0}, ValueError, ["get_iter", "fetch_timeout", "> 0", "None"]),
        ({"fetch_timeout": float("nan")}, ValueError, ["get_iter", "fetch_timeout"]),
        ({"fetch_timeout": "30"}, TypeError, ["get_iter", "fetch_timeout"]),
        ({"fetch_retries": -1}, ValueError, ["get_iter", "fetch_retries", ">= 0"]),
        ({"fetch_retries": True}, TypeError, ["get_iter", "fetch_retries"]),
        ({"fetch_backoff": -0.5}, ValueError, ["get_iter", "fetch_backoff", ">= 0"]),
    ],
)
def test_get_iter_names_the_argument_and_the_key(store_url, kwargs, exc, words):
    with pytest.raises(exc) as info:
        _driver(store_url).get_iter(**kwargs)
    message = str(info.value)
    assert all(w in message for w in words), message
    if "shuffle_key_buffer" in kwargs:
        assert "size" not in message  # shuffle's own parameter name would mislead


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        ({"fetch_timeout": -1}, ValueError, ["MessagepackDriver", "fetch_timeout", "> 0"]),
        ({"fetch_timeout": float("inf")}, ValueError, ["MessagepackDriver", "fetch_timeout", "finite"]),
        ({"fetch_retries": 1.5}, TypeError, ["MessagepackDriver", "fetch_retries", "int"]),
        ({"fetch_backoff": None}, TypeError, ["MessagepackDriver", "fetch_backoff"]),
    ],
)
def test_the_driver_checks_its_fetch_options(store_url, kwargs, exc, words):
    with pytest.raises(exc) as info:
        MessagepackDriver(store_url, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_a_misspelt_driver_option_is_not_silent(store_url):
    with pytest.warns(UserWarning, match="fetch_timout"):
        MessagepackDriver(store_url, fetch_timout=5)


def test_the_right_spelling_works(store_url):
    assert sorted(_driver(store_url).get_iter().collect()) == [0, 1]
    assert sorted(_driver(store_url).get_iter(keys_kwargs={"nested": True}).collect()) == [0, 1, 2, 3]
    seeded = _driver(store_url).get_iter(
        shuffle_key_buffer=4, key_shuffle_kwargs={"seed": 1}, shuffle_item_buffer=4, item_shuffle_kwargs={"seed": 2}
    )
    assert seeded.collect() == seeded.collect()
    assert _driver(store_url).get_iter(keys_iterable=["a"], fetch_timeout=None, fetch_retries=0).collect() == [0, 1]


def test_a_user_drivers_keywords_are_checked_against_its_own_signatures():
    driver = Recording()
    stream = driver.get_iter(flatten=True, keys_kwargs={"reverse": True}, get_kwargs={"scale": 10})
    assert stream.collect() == [20, 10, 0]
    with pytest.raises(TypeError, match=r"keys_kwargs.*'revers'.*Recording\.keys\(\).*known: reverse"):
        driver.get_iter(keys_kwargs={"revers": True})
    with pytest.raises(TypeError, match=r"get_kwargs.*'scal'.*Recording\.get\(\).*known: scale"):
        driver.get_iter(get_kwargs={"scal": 10})


@pytest.mark.parametrize("max_workers", [-1, 0, 1])
def test_max_workers_at_most_one_fetches_in_the_consumers_thread(max_workers):
    driver = Recording()
    assert driver.get_iter(flatten=True, max_workers=max_workers).collect() == [0, 1, 2]
    assert driver.threads == {threading.current_thread().name}


def test_max_workers_above_one_fetches_on_a_pool():
    driver = Recording()
    assert driver.get_iter(flatten=True, max_workers=2).collect() == [0, 1, 2]
    assert threading.current_thread().name not in driver.threads
