"""Execute the notebooks in notebooks/ and store them in place with their outputs.

    .venv/bin/python notebooks/execute.py                 # every notebooks/*.ipynb
    .venv/bin/python notebooks/execute.py 02-dask.ipynb   # some of them (names or paths)
    .venv/bin/python notebooks/execute.py --check         # compare with the stored outputs; write nothing

Each notebook runs top to bottom in a fresh kernel started with this Python (a kernelspec written into a temporary
directory whose argv is ``sys.executable``; IPython's profile there too), in a temporary working directory, so
running them writes nothing into the repository. tests/test_notebooks.py executes them the same way
(tests/notebook_compare.py) and fails when what they display no longer matches what is stored here.

What is stored is made stable (see ``clean_for_storage``): the notebook's metadata as it was, no execution
timestamps, execution counts 1, 2, ... in cell order, one stdout and one stderr output per cell, and no progress
bars or JVM / logging records. Values that legitimately vary (timings, rates, addresses) are stored as they came,
so re-running this on unchanged code changes only those. A notebook whose cell raises is not written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from notebook_compare import (  # noqa: E402
    NOTEBOOK_DIR,
    clean_for_storage,
    compare_report,
    execute,
    kernel_spec_manager,
    notebook_paths,
)


def _resolve(names: list[str]) -> list[Path]:
    if not names:
        return notebook_paths()
    paths = []
    for name in names:
        path = Path(name)
        if not path.exists():
            path = NOTEBOOK_DIR / name
        if not path.exists() or path.suffix != ".ipynb":
            raise SystemExit(f"no notebook {name!r} (looked in . and {NOTEBOOK_DIR})")
        paths.append(path.resolve())
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook names or paths (default: notebooks/*.ipynb)")
    parser.add_argument(
        "--check", action="store_true", help="execute and compare with the stored outputs, write nothing"
    )
    args = parser.parse_args(argv)

    failed = 0
    with kernel_spec_manager() as ksm:
        for path in _resolve(args.notebooks):
            stored = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            try:
                executed = execute(nbformat.read(path, as_version=4), ksm)
            except Exception as exc:  # CellExecutionError carries the cell and its traceback
                print(f"{path.name}: FAILED, not written\n{exc}", file=sys.stderr)
                failed += 1
                continue
            cleaned = clean_for_storage(executed, original_metadata=stored.metadata)
            took = time.perf_counter() - start
            report = compare_report(path.name, stored, cleaned)
            if args.check:
                print(f"{path.name}: {'matches' if report is None else 'DIFFERS'} ({took:.1f} s)")
                if report is not None:
                    print(report)
                    failed += 1
                continue
            nbformat.validate(cleaned)
            nbformat.write(cleaned, path)
            change = "outputs unchanged but for varying values" if report is None else "outputs changed"
            print(f"{path.name}: executed in {took:.1f} s and stored ({change})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
