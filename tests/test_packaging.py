"""Packaging guarantees: the optimizers-shadowing check, lazy heavy imports, the demo command, ruff-clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_users_optimizers_module_is_refused_with_its_path(tmp_path):
    shadow = tmp_path / "optimizers.py"
    shadow.write_text("X = 1\n")
    proc = run_python("import squirrel_graph", tmp_path)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr
    assert str(shadow) in proc.stderr and "shadows" in proc.stderr


def test_own_optimizers_package_is_accepted_and_heavy_libraries_stay_unimported(tmp_path):
    code = (
        "import sys, squirrel_graph\n"
        "from squirrel_graph import IterableSource\n"
        "assert IterableSource(range(3)).map(str).collect() == ['0', '1', '2']\n"
        "heavy = [m for m in ('torch', 'dask', 'numba', 'wandb', 'mlflow', 'graphviz') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout


def test_demo_prints_explain_writes_svg_and_reports_throughput(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "squirrel_graph.demo", "--items", "2000", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "== Optimized plan" in proc.stdout and "[fuse_maps] fused" in proc.stdout
    assert "samples/s read" in proc.stdout and "wrote 2000 samples in 4 shards" in proc.stdout
    assert (tmp_path / "plan.svg").read_text().count("<svg") == 1


def test_compat_module_paths_export_squirrel_core_names():
    import squirrel_graph.iterstream as its
    from squirrel_graph.iterstream import base, iterators, multiplexer, source

    assert its.IterableSource is source.IterableSource and base.Composable is its.Composable
    assert multiplexer.MultiplexingStrategy.ROUND_ROBIN.value == "RoundRobin"
    for name in ("take_", "map_", "getsize"):
        assert callable(getattr(iterators, name))
