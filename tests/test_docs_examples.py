"""The code in docs/ that the Sphinx build does not execute cannot drift either.

The pages under docs/ are executed when the site is built (``{code-cell}`` blocks, myst-nb; a cell that raises fails
``make docs``). A block that cannot run there (an S3 bucket, several ranks, a JVM, a tracking server) is a plain
``python`` fence (or a ``{code-block} python``) whose code lives in ``docs/examples/``. This module checks that

- every such fence equals one example file: the whole file, the file without its leading comments and module
  docstring, or one region of it between a ``# docs: begin`` line and a ``# docs: end`` line (the code before and
  after a region may set up what the page leaves out, e.g. a local S3 server, and check what it did);
- every example file (but helpers named ``_*.py``) is shown on a page, region by region;
- every example file runs, in an empty folder (unless another test module names it and runs it, as the Spark
  tests run the Spark page's blocks on their session), and prints what ``docs/examples/<name>.out`` holds when that file
  exists (pages include it as the block's output); timings (``1.23 s``) are not compared.
  ``SQUIRREL_GRAPH_UPDATE_DOCS_EXAMPLES=1`` (re)writes, from this run, the ``.out`` files that a page includes;
- the entry-point groups that ``toml`` fences declare exist in the code.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
BEGIN, END = "# docs: begin", "# docs: end"
UPDATE = os.environ.get("SQUIRREL_GRAPH_UPDATE_DOCS_EXAMPLES") == "1"
#: fences whose code the build does not run (``{code-cell}`` blocks are run by the build itself)
PLAIN_PYTHON = re.compile(r"^(`{3,}|~{3,})\s*(?:python|py|python3|\{code-block\}\s+python|\{code\}\s+python)\s*$")
TIMING = re.compile(r"\b\d+(?:\.\d+)? ?(s|ms|µs)\b")


def normalize(code: str) -> str:
    """Trailing spaces and the blank lines around the code do not count."""
    return "\n".join(line.rstrip() for line in code.strip("\n").splitlines()).strip("\n")


def fences(text: str) -> list[tuple[int, str, str]]:
    """(line number, info string, code) of each fenced block of a MyST page; directive options are not code."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(`{3,}|~{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        marker, info, start = m.group(1), m.group(2).strip(), i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(marker):
            body.append(lines[i])
            i += 1
        i += 1
        if info.startswith("{"):  # a directive: ":key: value" options, or a "---" YAML block, come first
            if body and body[0].strip() == "---":
                end = body.index("---", 1) if "---" in body[1:] else 0
                body = body[end + 1 :]
            while body and re.match(r"^:[\w-]+:", body[0]):
                body = body[1:]
        out.append((start + 1, info, "\n".join(body)))
    return out


def plain_python_fences() -> list[tuple[str, int, str]]:
    """(page, line, code) of every python fence in docs/ that the build does not execute."""
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for line, info, code in fences(page.read_text(encoding="utf-8")):
            if PLAIN_PYTHON.match("```" + info):
                found.append((page.name, line, code))
    return found


def regions(source: str) -> list[str]:
    """The code between each ``# docs: begin`` and the next ``# docs: end`` line."""
    out, current = [], None
    for line in source.splitlines():
        if line.strip() == BEGIN:
            assert current is None, f"nested {BEGIN!r}"
            current = []
        elif line.strip() == END:
            assert current is not None, f"{END!r} without {BEGIN!r}"
            out.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"{BEGIN!r} without {END!r}"
    return out


def without_header(source: str) -> str:
    """``source`` without its leading comment lines and module docstring."""
    tree = ast.parse(source)
    lines = source.splitlines()
    start = 0
    if (
        tree.body
        and isinstance(tree.body[0], ast.Expr)
        and isinstance(getattr(tree.body[0], "value", None), ast.Constant)
    ):
        if isinstance(tree.body[0].value.value, str):
            start = tree.body[0].end_lineno
    rest = lines[start:]
    while rest and (not rest[0].strip() or rest[0].lstrip().startswith("#")):
        rest = rest[1:]
    return "\n".join(rest)


def shown_parts(path: Path) -> list[str]:
    """What a page must show of an example file: each region, or (without regions) the file itself."""
    source = path.read_text(encoding="utf-8")
    parts = regions(source)
    return [normalize(p) for p in parts] if parts else [normalize(without_header(source))]


def candidates(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    return [normalize(source), *shown_parts(path)]


def example_files(helpers: bool = False) -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.py") if helpers or not p.name.startswith("_"))


def run_elsewhere(path: Path) -> str | None:
    """The test module that runs this example itself (it names ``docs/examples`` and the file), if any: e.g. the
    Spark page's blocks run in order on the Spark test session, so starting a JVM per file here would repeat them."""
    for module in sorted(Path(__file__).parent.glob("test_*.py")):
        if module.name == Path(__file__).name:
            continue
        text = module.read_text(encoding="utf-8")
        if '"examples"' in text or "docs/examples" in text:
            if f'"{path.stem}"' in text or f"{path.stem}.py" in text:
                return module.name
    return None


FENCES = plain_python_fences()


def test_the_pages_have_code_that_the_build_does_not_run_and_the_checks_find_it():
    # guards the parser: the pages name these files in their plain fences today
    shown = {p.name for p in example_files()}
    assert {"pytorch_ranks.py", "stores_s3.py", "numba_dataloader.py"} <= shown
    assert len(FENCES) >= 3
    executed = [code for page in DOCS.glob("*.md") for _, info, code in fences(page.read_text()) if "code-cell" in info]
    assert executed and not {normalize(c) for c in executed} & {normalize(c) for _, _, c in FENCES}


@pytest.mark.parametrize("page, line, code", FENCES, ids=[f"{p}:{n}" for p, n, _ in FENCES])
def test_every_python_fence_that_is_not_executed_is_the_code_of_an_example_file(page, line, code):
    want = normalize(code)
    files = example_files(helpers=True)
    if any(want in candidates(path) for path in files):
        return
    # the closest file, to show what differs
    best = max(
        ((c, path) for path in files for c in candidates(path)),
        key=lambda cp: difflib.SequenceMatcher(None, cp[0], want).ratio(),
        default=("", None),
    )
    diff = "\n".join(
        difflib.unified_diff(best[0].splitlines(), want.splitlines(), str(best[1]), f"{page}:{line}", lineterm="")
    )
    pytest.fail(
        f"docs/{page}, line {line}: this python fence is not executed when the docs are built and is not the code of "
        f"any file in docs/examples/ (the whole file, or a region between {BEGIN!r} and {END!r}). Make it a "
        f"{{code-cell}}, or put its code in docs/examples/ (a test runs those files).\n{diff}"
    )


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_every_example_file_is_shown_on_a_page(path):
    shown = {normalize(code) for _, _, code in FENCES}
    missing = [part for part in shown_parts(path) if part not in shown]
    assert not missing, (
        f"docs/examples/{path.name}: this code is on no page of docs/ (as a plain python fence); the page and the "
        f"file have diverged, or the file is left over:\n{missing[0][:2000]}"
    )


def top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def output_for_comparison(text: str) -> str:
    return TIMING.sub(r"<t> \1", normalize(text))


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in example_files() if not run_elsewhere(p)], ids=lambda p: p.name)
def test_every_example_file_runs_and_prints_what_its_page_shows(path, tmp_path):
    for name in sorted(top_level_imports(path)):
        if name != "__future__" and importlib.util.find_spec(name) is None:
            pytest.skip(f"could not import {name!r} (an optional extra)")
    if "pyspark" in top_level_imports(path) and shutil.which("java") is None:
        pytest.skip("could not import pyspark's Java runtime: java is not on PATH (make java installs it)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    env.setdefault("WANDB_MODE", "offline")
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False
    )
    assert proc.returncode == 0, f"docs/examples/{path.name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    expected = path.with_suffix(".out")
    if UPDATE and f"examples/{expected.name}" in "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md")):
        expected.write_text(normalize(proc.stdout) + "\n", encoding="utf-8")
        assert expected.read_text(encoding="utf-8").strip() == proc.stdout.strip()
    elif expected.exists():
        got, want = output_for_comparison(proc.stdout), output_for_comparison(expected.read_text(encoding="utf-8"))
        assert got == want, (
            f"docs/examples/{path.name} printed something else than {expected.name}, which its page shows "
            f"(SQUIRREL_GRAPH_UPDATE_DOCS_EXAMPLES=1 rewrites it):\n"
            + "\n".join(
                difflib.unified_diff(want.splitlines(), got.splitlines(), expected.name, "this run", lineterm="")
            )
        )


def test_every_output_file_belongs_to_an_example_and_is_shown():
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    for out in sorted(EXAMPLES.glob("*.out")):
        assert out.with_suffix(".py").exists(), f"{out.name}: no {out.stem}.py prints it"
        assert f"examples/{out.name}" in pages, f"{out.name}: no page includes it"


def entry_point_groups(text: str) -> list[str]:
    return re.findall(r'^\[project\.entry-points\."([^"]+)"\]', text, flags=re.M)


def test_entry_point_groups_in_toml_fences_are_the_ones_the_code_reads():
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "squirrel_graph").rglob("*.py"))
    groups = [
        group
        for page in sorted(DOCS.glob("*.md"))
        for _, info, body in fences(page.read_text(encoding="utf-8"))
        if info == "toml"
        for group in entry_point_groups(body)
    ]
    assert groups, "the plugin docs declare entry points in a toml fence"
    for group in groups:
        assert f'"{group}"' in code or f"'{group}'" in code, (
            f"entry point group {group!r} is read nowhere in squirrel_graph"
        )


def test_the_docs_build_executes_every_page_and_fails_on_errors():
    tree = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    settings = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert ast.literal_eval(settings["nb_execution_mode"]) == "force"  # every build runs every page
    assert ast.literal_eval(settings["nb_execution_raise_on_error"]) is True
    assert "myst_nb" in ast.literal_eval(settings["extensions"])


def test_fence_parser_reads_directive_options_and_regions():
    page = (
        "```{code-block} python\n:caption: x\n\nprint(1)\n```\n\n"
        "```{code-cell} python\n---\ntags: [a]\n---\nprint(2)\n```\n"
    )
    assert [(info, normalize(code)) for _, info, code in fences(page)] == [
        ("{code-block} python", "print(1)"),
        ("{code-cell} python", "print(2)"),
    ]
    assert regions(f"a = 1\n{BEGIN}\nb = 2\n{END}\nc = 3\n{BEGIN}\nd = 4\n{END}\n") == ["b = 2", "d = 4"]
    assert without_header('# ruff: noqa\n"""doc\nstring"""\n\nimport os\n') == "import os"
    assert output_for_comparison("took 2.10 s, 0.5 ms") == "took <t> s, <t> ms"
