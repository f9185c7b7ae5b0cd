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
    assert "2000 of 2000 samples through the DataLoader" in proc.stdout and "reached the key listing" in proc.stdout
    assert "per-stage stats" in proc.stdout and "async_map(slow_lookup)" in proc.stdout.split("per-stage stats")[1]
    assert (tmp_path / "plan.svg").read_text().count("<svg") == 1


def test_compat_module_paths_export_squirrel_core_names():
    import squirrel_graph.iterstream as its
    from squirrel_graph.iterstream import base, iterators, multiplexer, source

    assert its.IterableSource is source.IterableSource and base.Composable is its.Composable
    assert multiplexer.MultiplexingStrategy.ROUND_ROBIN.value == "RoundRobin"
    for name in ("take_", "map_", "getsize"):
        assert callable(getattr(iterators, name))


def test_storage_compat_paths_export_squirrel_core_names(tmp_path):
    import importlib

    expected = {
        "squirrel_graph.fsspec.fs": ["get_fs_from_url", "get_protocol"],
        "squirrel_graph.serialization": ["MessagepackSerializer", "JsonSerializer", "SquirrelSerializer"],
        "squirrel_graph.serialization.msgpack": ["MessagepackSerializer"],
        "squirrel_graph.serialization.jsonl": ["JsonSerializer"],
        "squirrel_graph.serialization.serializer": ["SquirrelSerializer"],
        "squirrel_graph.store": ["AbstractStore", "FilesystemStore", "SquirrelStore"],
        "squirrel_graph.store.squirrel_store": ["SquirrelStore"],
        "squirrel_graph.store.filesystem": ["FilesystemStore"],
        "squirrel_graph.driver": [
            "Driver",
            "IterDriver",
            "MapDriver",
            "StoreDriver",
            "MessagepackDriver",
            "JsonlDriver",
            "FileDriver",
        ],
        "squirrel_graph.driver.msgpack": ["MessagepackDriver"],
        "squirrel_graph.catalog": ["Catalog", "Source", "CatalogKey"],
        "squirrel_graph.constants": ["URL", "SampleType", "FILESYSTEM", "SQUIRREL_BUCKET", "SQUIRREL_TMP_DATA_BUCKET"],
        "squirrel_graph.framework.exceptions": ["PyTorchSplittingException", "SourceExistsError"],
        "squirrel_graph.framework.plugins.plugin_manager": ["register_driver", "register_source"],
        "squirrel_graph.framework.io": ["write_to_file", "read_from_file"],
    }
    for module, names in expected.items():
        mod = importlib.import_module(module)
        missing = [n for n in names if not hasattr(mod, n)]
        assert not missing, f"{module} lacks {missing}"
    from squirrel_graph.framework.io import read_from_file, write_to_file
    from squirrel_graph.serialization import JsonSerializer

    write_to_file(str(tmp_path / "obj.json"), {"a": [1, 2]}, serializer=JsonSerializer())
    assert read_from_file(str(tmp_path / "obj.json"), serializer=JsonSerializer()) == {"a": [1, 2]}
