"""Put each deliberate bug that once slipped through the suite into a copy of the tree, run the tests that must
catch it, and report whether they did (``make deliberate-bugs``; not part of ``make test``).

    python tests/deliberate_bugs.py [--only NAME ...]

Each bug is one exact text replacement in one file. A bug counts as caught when the named tests fail on the
mutated copy; the same tests must pass on an unmutated copy first, or the check means nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bug:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = (
    Bug(
        "numba: int64 overflow guard off",
        "squirrel_graph/backends/numba/__init__.py",
        "            if abs(np.float64(x) - x_f) > 1e-9 * abs(x_f):\n                ok = False",
        "            if False:\n                ok = False",
        ("tests/test_numba_chunks.py", "tests/test_numba.py"),
    ),
    Bug(
        "numba: first item of every later chunk dropped",
        "squirrel_graph/backends/numba/__init__.py",
        "    while chunk := list(itertools.islice(it, CHUNK)):",
        "    while chunk := list(itertools.islice(it, CHUNK))[1:]:",
        ("tests/test_numba_chunks.py", "tests/test_notebooks.py::test_notebook_runs_without_errors[03-numba.ipynb]"),
    ),
    Bug(
        "equalize='pad' repeats the first item",
        "squirrel_graph/runtime/splits.py",
        "        for item in itertools.islice(open_input(), target - produced):",
        "        for item in itertools.repeat(next(iter(open_input())), target - produced):",
        ("tests/test_passes.py",),
    ),
    Bug(
        "a split pushed past take",
        "squirrel_graph/graph/nodes.py",
        "@traits(order_sensitive=True, keeps_items=True, holds_state=True)\n"
        "@dataclass(frozen=True, eq=False)\nclass Take(",
        "@traits(keeps_items=True, holds_state=True)\n@dataclass(frozen=True, eq=False)\nclass Take(",
        ("tests/test_worker_splits.py",),
    ),
    Bug(
        "seeded shuffles above a split seeded per worker",
        "squirrel_graph/backends/threaded/stages.py",
        "    above = [plan.node(a) for a in plan.ancestors(nid) if isinstance(plan.node(a), Split)]",
        "    above = [Split(axis='worker')]",
        ("tests/test_worker_splits.py",),
    ),
    Bug(
        "split safety check switched off",
        "optimizers/check_split_safety.py",
        "            if other.differs_between_processes:",
        "            if False:",
        ("tests/test_worker_splits.py",),
    ),
    Bug(
        "dask without a client: the local path broken",
        "squirrel_graph/backends/dask/__init__.py",
        "        return dask.compute(dask.delayed(fn, pure=False)(*args))[0]",
        "        return dask.compute(dask.delayed(fn, pure=False)(*args), scheduler='distributed')[0]",
        ("tests/test_dask.py::test_without_a_client_tasks_run_on_the_local_scheduler_in_a_fresh_process",),
    ),
)


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _run_tests(tree: Path, tests: tuple[str, ...]) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    return subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="names (substrings) of the bugs to check")
    args = parser.parse_args()
    bugs = [b for b in BUGS if not args.only or any(o in b.name for o in args.only)]
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        _copy_tree(tree)
        for bug in bugs:
            target = tree / bug.path
            original = target.read_text(encoding="utf-8")
            if original.count(bug.old) != 1:
                print(f"STALE   {bug.name}: the text to replace is not in {bug.path} exactly once")
                missed += 1
                continue
            if _run_tests(tree, bug.tests) != 0:
                print(f"BROKEN  {bug.name}: the tests fail without the bug")
                missed += 1
                continue
            target.write_text(original.replace(bug.old, bug.new), encoding="utf-8")
            try:
                caught = _run_tests(tree, bug.tests) != 0
            finally:
                target.write_text(original, encoding="utf-8")
            missed += not caught
            print(f"{'CAUGHT ' if caught else 'MISSED '} {bug.name}  ({', '.join(bug.tests)})")
    print(f"\n{len(bugs) - missed} of {len(bugs)} deliberate bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
