"""Every public name of every squirrel-core 0.20.2 module imports from the same path under squirrel_graph
(``squirrel.X.name`` -> ``squirrel_graph.X.name``), so migrating is a search and replace of the package name.

The names are a fixture read from squirrel-core's sources by tests/fixtures/make_squirrel_core_names.py (its
docstring says which names count and how to regenerate it). Each module fails on its first missing name.
"""

from __future__ import annotations

import importlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "squirrel_core_0_20_2_public_names.json"
PUBLIC_NAMES: dict[str, list[str]] = json.loads(FIXTURE.read_text(encoding="utf-8"))

#: squirrel-core names deliberately not provided, with the reason. (module, None) would skip a whole module.
NOT_PROVIDED: dict[tuple[str, str | None], str] = {
    ("squirrel.benchmark.msgpack_caching", "df"): "a result of running the benchmark at import; call main()",
    ("squirrel.benchmark.msgpack_caching", "ax"): "the figure drawn at import; main() or plot() return it",
}


def ours(module: str) -> str:
    return "squirrel_graph" + module[len("squirrel") :]


def test_the_fixture_is_squirrel_cores_api():
    assert len(PUBLIC_NAMES) > 50 and all(m == "squirrel" or m.startswith("squirrel.") for m in PUBLIC_NAMES)
    assert "squirrel.integration_test" not in PUBLIC_NAMES and "Composable" in PUBLIC_NAMES["squirrel.iterstream"]
    assert "squirrel_plugin_manager" in PUBLIC_NAMES["squirrel.framework.plugins.plugin_manager"]
    stale = [
        key for key in NOT_PROVIDED if key[0] not in PUBLIC_NAMES or (key[1] and key[1] not in PUBLIC_NAMES[key[0]])
    ]
    assert not stale, f"allowlist entries that squirrel-core does not have: {stale}"


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_module_and_names_import_from_squirrel_graph(module):
    if (module, None) in NOT_PROVIDED:
        pytest.skip(NOT_PROVIDED[module, None])
    try:
        mod = importlib.import_module(ours(module))
    except ImportError as exc:
        pytest.fail(f"{module} -> {ours(module)} does not import: {exc!r}")
    for name in PUBLIC_NAMES[module]:
        if (module, name) in NOT_PROVIDED:
            assert not hasattr(mod, name), f"{ours(module)}.{name} exists now: remove it from NOT_PROVIDED"
            continue
        assert hasattr(mod, name), f"{module}.{name} -> {ours(module)} has no {name!r}"


def test_async_content_and_json_decoder_behave_as_squirrel_cores():
    from squirrel_graph.iterstream.base import AsyncContent
    from squirrel_graph.serialization.jsonl import SquirrelJsonDecoder, SquirrelJsonEncoder

    with ThreadPoolExecutor(1) as pool:
        content = AsyncContent(3, lambda x: x * 2, pool)
        assert content.value(timeout=10) == 6 and content.stack == 1
        failing = AsyncContent(0, lambda x: 1 / x, pool)
        with pytest.raises(ZeroDivisionError):
            failing.value()
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    decoded = json.loads(json.dumps({"a": arr}, cls=SquirrelJsonEncoder), cls=SquirrelJsonDecoder)
    assert decoded["a"].dtype == np.int16 and (decoded["a"] == arr).all()
