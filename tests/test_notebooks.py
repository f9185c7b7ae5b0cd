"""Execute every notebook in notebooks/ with the Python running the tests, and check what it displayed.

The kernel is started from a kernelspec written into a temporary directory whose ``argv`` is this
``sys.executable``, so the notebooks run in the same environment as pytest (a fresh CI venv needs no kernelspec
installed by hand, and a ``python3`` kernelspec elsewhere on the machine cannot take over).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

import squirrel_graph

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 120
EXPLAIN_TAG = "explain-svg"  # cells tagged so must display an SVG plan with a fused stage


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (squirrel_graph tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.fixture(autouse=True)
def _isolated_ipython(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: keep IPython's profile and history out of the user's home.
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))


def execute(nb: nbformat.NotebookNode, ksm: KernelSpecManager, cwd: Path) -> nbformat.NotebookNode:
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    client = NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(cwd)}},  # the kernel's working directory
    )
    return client.execute()


def outputs(nb: nbformat.NotebookNode):
    """(cell index, output) for every output of every code cell."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            yield index, out


def test_kernel_is_the_python_running_the_tests(kernel_spec_manager, tmp_path):
    code = "import sys, squirrel_graph\nprint(sys.executable)\nprint(squirrel_graph.__file__)"
    nb = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), kernel_spec_manager, tmp_path)
    text = "".join(out.get("text", "") for _, out in outputs(nb))
    executable, package = text.splitlines()
    assert Path(executable) == Path(sys.executable)
    assert Path(package).resolve() == Path(squirrel_graph.__file__).resolve()


def test_quickstart_notebook_exists():
    assert ROOT / "notebooks" / "01-quickstart.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, kernel_spec_manager, tmp_path):
    nb = nbformat.read(path, as_version=4)
    nb = execute(nb, kernel_spec_manager, tmp_path)

    for index, out in outputs(nb):
        assert out.output_type != "error", f"cell {index} raised {out.get('ename')}: {out.get('evalue')}"
        if out.output_type == "stream" and out.name == "stderr":
            assert "Traceback" not in out.text, f"cell {index} printed a traceback:\n{out.text}"

    explain_cells = [i for i, c in enumerate(nb.cells) if EXPLAIN_TAG in c.get("metadata", {}).get("tags", [])]
    if path.name == "01-quickstart.ipynb":
        assert explain_cells, f"no cell tagged {EXPLAIN_TAG!r} in {path.name}"
    for index in explain_cells:
        svgs = [
            out.data["image/svg+xml"]
            for out in nb.cells[index].outputs
            if out.output_type in ("execute_result", "display_data") and "image/svg+xml" in out.get("data", {})
        ]
        assert svgs, (
            f"cell {index} of {path.name} displayed no image/svg+xml output (is graphviz's `dot` binary installed?); "
            f"it displayed {[sorted(o.get('data', {})) for o in nb.cells[index].outputs]}"
        )
        assert any("fused stage" in svg for svg in svgs), f"cell {index}: the SVG shows no fused stage"
