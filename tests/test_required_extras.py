"""Under SQUIRREL_GRAPH_REQUIRE_EXTRAS=1 (what ``make test`` sets), a test skipped for a missing import fails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")
NEEDS_A_MISSING_EXTRA = """
import pytest

def test_in_a_function():
    pytest.importorskip("squirrel_graph_no_such_extra")

def test_other_skips_stay_skips():
    pytest.skip("not on this platform")
"""
MODULE_LEVEL = """
import pytest
pytest.importorskip("squirrel_graph_no_such_extra")

def test_never_collected():
    pass
"""


@pytest.mark.parametrize("required", [False, True])
def test_a_missing_extra_fails_only_when_extras_are_required(pytester, monkeypatch, required):
    monkeypatch.setenv("SQUIRREL_GRAPH_REQUIRE_EXTRAS", "1" if required else "0")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_functions=NEEDS_A_MISSING_EXTRA, test_module_level=MODULE_LEVEL)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if required:  # the module that cannot import is a collection error, which stops the run before any test
        assert result.ret != 0
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*an extra is missing*squirrel_graph_no_such_extra*"])
        only_functions = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_functions.py")
        only_functions.assert_outcomes(failed=1, skipped=1)
    else:
        result.assert_outcomes(skipped=3)
