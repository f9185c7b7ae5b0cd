"""Execute every notebook in notebooks/ with the Python running the tests, and compare what it displays with the
outputs stored in the notebook.

The notebooks are stored executed (``.venv/bin/python notebooks/execute.py``), so a reader sees their outputs
(explain pictures included) without running them. Each one is executed here once, the same way the script does it
(tests/notebook_compare.py): a kernel from a kernelspec written into a temporary directory whose ``argv`` is this
``sys.executable`` (a fresh CI venv needs no kernelspec installed by hand, and a ``python3`` kernelspec elsewhere on
the machine cannot take over), in a temporary working directory. Its outputs must match the stored ones but for
what legitimately varies from run to run (notebook_compare.MASKS and the stream filters: timings, rates,
addresses, temporary paths, pids, ports, progress bars, dask's port fallback, JVM and logging records; SVG pictures
by structure and text, not coordinates). A notebook stored without its outputs, or with outputs the code no
longer produces, fails with the diff of its first differing cell.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_compare import (
    ROOT,
    canonical_cell,
    clean_for_storage,
    compare_report,
    execute,
    kernel_spec_manager,
    mask,
    missing_outputs,
    notebook_paths,
    svg_structure,
)

import squirrel_graph

NOTEBOOKS = notebook_paths()
EXPLAIN_TAG = "explain-svg"  # cells tagged so must display an SVG plan with a fused stage


@pytest.fixture(scope="module")
def ksm():
    with kernel_spec_manager() as manager:
        yield manager


def outputs(nb: nbformat.NotebookNode):
    """(cell index, output) for every output of every code cell."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            yield index, out


def test_kernel_is_the_python_running_the_tests(ksm):
    code = "import sys, squirrel_graph\nprint(sys.executable)\nprint(squirrel_graph.__file__)"
    nb = execute(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), ksm)
    text = "".join(out.get("text", "") for _, out in outputs(nb))
    executable, package = text.splitlines()
    assert Path(executable) == Path(sys.executable)
    assert Path(package).resolve() == Path(squirrel_graph.__file__).resolve()


def test_quickstart_notebook_exists():
    assert ROOT / "notebooks" / "01-quickstart.ipynb" in NOTEBOOKS


def _check_no_errors(name: str, nb: nbformat.NotebookNode, what: str) -> None:
    for index, out in outputs(nb):
        assert out.output_type != "error", (
            f"{name} ({what}): cell {index} raised {out.get('ename')}: {out.get('evalue')}"
        )
        if out.output_type == "stream" and out.name == "stderr":
            assert "Traceback" not in out.text, f"{name} ({what}): cell {index} printed a traceback:\n{out.text}"


def _check_explain_cells(path: Path, nb: nbformat.NotebookNode) -> None:
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_matches_its_stored_outputs(path: Path, ksm):
    stored = nbformat.read(path, as_version=4)
    _check_no_errors(path.name, stored, "stored outputs")

    executed = execute(copy.deepcopy(stored), ksm)
    _check_no_errors(path.name, executed, "executed now")
    _check_explain_cells(path, executed)

    # compared as execute.py would store it: one stream per name, no progress bars or log records
    executed = clean_for_storage(executed, original_metadata=stored.metadata)
    report = compare_report(path.name, stored, executed)
    if report is not None:
        pytest.fail(report, pytrace=False)


# --------------------------------------------------------------------------------------- the normalizer itself


def _cell(*outs) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell("x", outputs=list(outs))


def _stdout(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _stderr(text: str):
    return nbformat.v4.new_output("stream", name="stderr", text=text)


def _svg(svg: str):
    return nbformat.v4.new_output("execute_result", data={"image/svg+xml": svg, "text/plain": "plan"})


SVG = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Generated by graphviz version {version} -->
<svg width="{w}pt" height="398pt" viewBox="0.00 0.00 {w}.40 398.40" xmlns="http://www.w3.org/2000/svg">
<g id="graph0" class="graph" transform="scale(1 1) rotate(0) translate(7.2 391.2)">
<g id="node1" class="node"><title>O_1_fused</title>
<g id="a_node1"><a xlink:title="1:fused: map(make_sample) &#45;&gt; map(normalize)">
<polygon fill="#dbe9f6" points="{x},-300 10,-300 10,-250 {x},-250"/>
<text text-anchor="middle" x="{x}" y="-281.2" font-family="Helvetica,sans-Serif" font-size="11.00">{label}</text>
<text x="{x}" y="-269.2">{rate}</text>
</a></g></g>
</g></svg>"""


def svg(label="fused stage", w=576, x=77, version="2.43.0", rate="1,234 items/s"):
    return SVG.format(label=label, w=w, x=x, version=version, rate=rate)


@pytest.mark.parametrize(
    "a, b",
    [
        ("numba, first run: 66667 items in 8.135 s\n", "numba, first run: 66667 items in 0.532 s\n"),
        ("compile 0.04 s, 0 new", "compile 12ms, 0 new"),
        ("1,234.5 items/s; 85.3 MB/s; 12 it/s", "98 items/s; 1.2 MB/s; 3,001 it/s"),
        ("<function f at 0x7f3a2b1c9d30>", "<function f at 0x7f00aa11bb22>"),
        ("wrote /tmp/pytest-of-me/pytest-3/test_x0/out.bin", "wrote /tmp/sg-notebook-k2j3/cwd/out.bin"),
        ("worker pid=4711 on port 40125", "worker pid=912 on port 8787"),
        ("Client(inproc://10.0.0.5/4711/1)", "Client(inproc://172.17.0.2/88/1)"),
        ("dashboard at http://127.0.0.1:8787/status", "dashboard at http://127.0.0.1:41257/status"),
        ("scheduler tcp://127.0.0.1:40125", "scheduler tcp://127.0.0.1:33001"),
        ("('http://localhost:4040', 'local-1796187128972')", "('http://localhost:4041', 'local-1796187279398')"),
        ("<pyspark.sql.session.SparkSession at 0x7fd40f489fd0>", "<pyspark.sql.session.SparkSession at 0x7f00aa>"),
        ("LocalCluster(3a5b6c7d, workers=1, memory=125.70 GiB)", "LocalCluster(9f0e1d2c, workers=1, memory=7.5 GiB)"),
    ],
)
def test_values_that_vary_between_runs_compare_equal(a, b):
    assert mask(a) == mask(b)
    assert canonical_cell(_cell(_stdout(a))) == canonical_cell(_cell(_stdout(b)))


@pytest.mark.parametrize(
    "a, b",
    [
        ("partition_size=1: 200 items, 200 tasks", "partition_size=1: 200 items, 600 tasks"),
        ("10 batches of 16", "10 batches of 15"),
        ("1:fused  map(make_sample) → map(normalize)", "1:fused  map(make_sample)"),
        ("[fuse_maps] skipped : disabled by the user", "[fuse_maps] fused 1:map, 2:map"),
        ("numba (chunks of int) (compile 0.00 s, 0 new)", "python (compile 0.00 s, 0 new)"),
    ],
)
def test_differences_in_what_the_code_displays_compare_unequal(a, b):
    assert canonical_cell(_cell(_stdout(a))) != canonical_cell(_cell(_stdout(b)))


def test_svg_compares_by_structure_and_text_not_coordinates():
    base = canonical_cell(_cell(_svg(svg())))
    # other coordinates and sizes (fonts), another graphviz version, another measured rate: the same
    assert canonical_cell(_cell(_svg(svg(w=606, x=91, version="12.2.1", rate="98.5 items/s")))) == base
    # another label: different
    assert canonical_cell(_cell(_svg(svg(label="map(make_sample)")))) != base
    structure = svg_structure(svg())
    assert any("text: fused stage" in line for line in structure)
    assert any("map(make_sample) -> map(normalize)" in line for line in structure)  # the tooltip, unescaped
    assert not any("77" in line or "576" in line for line in structure)


def test_svg_inside_html_compares_by_structure():
    def html(w, label):
        return nbformat.v4.new_output(
            "display_data", data={"text/html": f"<div><b>plan</b>{svg(w=w, label=label)}</div>"}
        )

    assert canonical_cell(_cell(html(576, "fused stage"))) == canonical_cell(_cell(html(1200, "fused stage")))
    assert canonical_cell(_cell(html(576, "fused stage"))) != canonical_cell(_cell(html(576, "other stage")))


def test_noise_on_stderr_is_ignored_but_real_warnings_are_not():
    spark = (
        "WARNING: Using incubator modules: jdk.incubator.vector\n"
        "Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties\n"
        'Setting default log level to "WARN".\n'
        "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).\n"
        "25/01/31 12:00:01 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform\n"
        "25/01/31 12:00:09 WARN TaskSetManager: Lost task 0.0 in stage 1.0\n"
        "java.io.IOException: boom\n"
        "\tat org.apache.spark.Foo.bar(Foo.scala:12)\n"
        "\t... 3 more\n"
        "\r[Stage 0:>                                                          (0 + 2) / 2]\r\n"
    )
    dask = (
        "2025-01-31 12:00:00,123 - distributed.utils_perf - WARNING - full garbage collections took 12% CPU time\n"
        "/x/distributed/node.py:195: UserWarning: Port 8787 is already in use.\n"
        "Perhaps you already have a cluster running?\n"
        "Hosting the HTTP server on port 41257 instead\n"
        "  warnings.warn(\n"
    )
    tqdm = " 45%|████▌     | 45/100 [00:01<00:02, 25.31it/s]\n100%|██████████| 100/100 [00:03<00:00, 30.02it/s]\n"
    quiet = canonical_cell(_cell(_stdout("42\n")))
    assert canonical_cell(_cell(_stdout("42\n"), _stderr(spark + dask + tqdm))) == quiet
    assert canonical_cell(_cell(_stderr(tqdm), _stdout("42\n"), _stderr(dask))) == quiet
    warning = "/x/squirrel_graph/foo.py:3: DeprecationWarning: use bar()\n  foo()\n"
    assert canonical_cell(_cell(_stdout("42\n"), _stderr(spark + warning))) != quiet

    # what is stored is cleaned the same way: no progress bars or log records, no stream left empty by that
    nb = nbformat.v4.new_notebook(cells=[_cell(_stdout("42\n"), _stderr(spark + dask + tqdm))])
    assert clean_for_storage(nb).cells[0].outputs == [_stdout("42\n")]


def test_streams_compare_by_text_whatever_chunks_they_came_in():
    one = _cell(_stdout("a\nb\n"), _svg(svg()))
    split = _cell(_stdout("a\n"), _svg(svg()), _stdout("b\n"))
    assert canonical_cell(one) == canonical_cell(split)


def test_a_notebook_stored_without_outputs_fails_with_a_readable_report():
    executed = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# title"),
            _cell(_stdout("10 batches of 16\n")),
            _cell(),
            _cell(_svg(svg())),
        ]
    )
    stored = copy.deepcopy(executed)
    for cell in stored.cells[1:]:
        cell.outputs = []
    assert missing_outputs(stored, executed) == [1, 3]
    report = compare_report("nb.ipynb", stored, executed)
    assert report is not None
    assert "code cells [1, 3] display output when executed but have none stored" in report
    assert "notebooks/execute.py" in report
    assert "+  10 batches of 16" in report  # the diff of the first differing cell

    stale = copy.deepcopy(executed)
    stale.cells[3].outputs = [_svg(svg(label="map(make_sample)"))]
    report = compare_report("nb.ipynb", stale, executed)
    assert report is not None and "code cells [3] no longer match" in report
    changed = [line.split() for line in report.splitlines() if line.startswith(("-  ", "+  "))]
    assert changed == [["-", "text:", "map(make_sample)", "<rate>"], ["+", "text:", "fused", "stage", "<rate>"]]

    assert compare_report("nb.ipynb", executed, executed) is None
