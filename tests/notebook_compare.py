"""Execute the notebooks of notebooks/ the same way everywhere, store them stably, and compare their outputs.

Shared by ``notebooks/execute.py`` (which executes the notebooks and stores them with their outputs) and
``tests/test_notebooks.py`` (which executes them again and compares what they display with what is stored), so the
stored outputs and the test's come from the same kernel set-up.

Three layers:

* :func:`kernel_spec_manager` and :func:`execute`: a kernel whose ``argv`` is this ``sys.executable`` (from a
  kernelspec written into a temporary directory, with IPython's profile there too), run in a temporary working
  directory, so nothing is written into the repository and no other ``python3`` kernelspec can take over.
* :func:`clean_for_storage`: what is stored. Real values are kept (the timings a reader sees are real ones);
  what would make every run's file differ structurally is removed: notebook and cell metadata written by the
  execution (timestamps, ``language_info``, widget state), progress bars (tqdm, Spark's ``[Stage 0:>  (0 + 2) / 2]``)
  and JVM / logging records on stderr, which arrive in whichever cell is running when they are flushed.
  Streams are coalesced (one stdout and one stderr output per cell) with ``\\r`` applied.
* :func:`canonical_cell`: what is compared, as text lines. Everything :func:`clean_for_storage` drops, plus
  values that legitimately vary from run to run are masked (see :data:`MASKS`), and SVG images are compared by
  structure (element classes and ids, text, tooltips) rather than by layout coordinates, which vary with fonts.
"""

from __future__ import annotations

import copy
import difflib
import html
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 120

#: set in the kernel's environment: IPython's profile goes into the temporary kernel directory (added at start);
#: a fixed hash seed so a printed set or a hash-ordered structure reads the same in every run; Spark binds to the
#: loopback address (no network beyond 127.0.0.1, and no "hostname resolves to a loopback address" warning).
KERNEL_ENV = {"PYTHONHASHSEED": "0", "SPARK_LOCAL_IP": "127.0.0.1"}

# ----------------------------------------------------------------------------------------------------- execution


def notebook_paths() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@contextmanager
def kernel_spec_manager() -> Iterator:
    """A KernelSpecManager that knows one kernel, ``python3``, started as ``sys.executable -m ipykernel_launcher``."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory(prefix="sg-kernels-") as tmp:
        kernels = Path(tmp) / "kernels"
        spec_dir = kernels / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (squirrel_graph)",
            "language": "python",
            "env": {**KERNEL_ENV, "IPYTHONDIR": str(Path(tmp) / "ipython")},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        yield KernelSpecManager(kernel_dirs=[str(kernels)])


def execute(nb, ksm, cwd: Path | None = None, timeout: int = CELL_TIMEOUT_S):
    """Execute ``nb`` in place (and return it) with the kernel of ``ksm``, in ``cwd`` or a fresh temporary
    directory, and shut the kernel down. Raises nbclient's CellExecutionError when a cell raises.

    The kernel talks to this process over Unix sockets in a temporary directory (no TCP port, no connection file
    in Jupyter's runtime directory)."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="sg-notebook-") as tmp:
        workdir = Path(tmp) / "cwd"
        workdir.mkdir()
        km = AsyncKernelManager(
            kernel_name=KERNEL_NAME,
            kernel_spec_manager=ksm,
            transport="ipc",
            connection_file=str(Path(tmp) / "kernel.json"),
        )
        client = NotebookClient(
            nb,
            km=km,
            kernel_name=KERNEL_NAME,
            timeout=timeout,
            record_timing=False,  # no timestamps in cell metadata
            coalesce_streams=True,  # one stdout and one stderr output per cell, with \r and \b applied
            resources={"metadata": {"path": str(cwd or workdir)}},  # the kernel's working directory
        )
        return client.execute(cleanup_kc=True)  # shut the kernel down too, although it was passed in


# ------------------------------------------------------------------------------------------- noise on streams

_TQDM = re.compile(
    r"(\d+%\|.*\|)"  # 45%|████▌     |
    r"|(\[(\d+:)?\d+:\d\d(<((\d+:)?\d+:\d\d|\?))?,\s*[^\]]*\]\s*$)"  # [00:01<00:02, 12.3it/s] or [00:01, ?it/s]
)
_SPARK_PROGRESS = re.compile(r"^\s*\[Stage \d+.*\]\s*$")
_PROGRESS = (_TQDM, _SPARK_PROGRESS)

#: a log record's first line on stderr: log4j as Spark prints it (``25/01/31 12:00:00 WARN Utils: ...``), or any
#: line led by an ISO timestamp (Python logging as dask configures it: ``2025-01-31 12:00:00,123 - distributed...``)
_LOG_RECORD = re.compile(
    r"^(\d\d/\d\d/\d\d \d\d:\d\d:\d\d\s+(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\b"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)"
)
#: what the JVM and log4j print on their own, without a timestamp, when a SparkSession starts
_JVM_LINE = re.compile(
    r"^(WARNING: "  # the Java runtime's own warnings (incubator modules, sun.misc.Unsafe, native access)
    r"|SLF4J: |.*StatusLogger "
    r"|Using Spark's default log4j profile"
    r"|Setting default log level to "
    r"|To adjust logging level use sc\.setLogLevel"
    r")"
)
#: the lines of a Java stack trace under a log record
_JVM_CONTINUATION = re.compile(
    r"^(\s+at |\s*\.\.\. \d+ more|Caused by: |Suppressed: |\s+\S|[\w$.]+(Exception|Error)\b)"
)


#: the first line of a Python warning as ``warnings`` prints it: ``path:line: Category: message``
_WARNING_HEADER = re.compile(r"^\S.*?:\d+: (?:\w+\.)*\w*Warning: ")
#: warnings that depend on the machine, not on the notebook: dask's scheduler falls back to a random port for its
#: HTTP server when another process (a user's cluster, another test run) already listens on 8787
_ENVIRONMENT_WARNINGS = re.compile(r"Port \d+ is already in use")


def _drop_noise_lines(text: str, *, logs: bool) -> str:
    """``text`` without progress-bar lines and (``logs``) without log records, JVM lines and the warnings that
    depend on the machine (each with its message lines and the source line ``warnings`` prints under it)."""
    kept: list[str] = []
    in_record = in_warning = False
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if any(p.search(bare) for p in _PROGRESS):
            continue
        if logs:
            if in_warning:  # message lines, then the indented source line that ends the warning
                in_warning = not bare.startswith((" ", "\t"))
                continue
            if _WARNING_HEADER.match(bare) and _ENVIRONMENT_WARNINGS.search(bare):
                in_warning = True
                continue
            if _LOG_RECORD.match(bare) or _JVM_LINE.match(bare):
                in_record = True
                continue
            if in_record and _JVM_CONTINUATION.match(bare):
                continue
        in_record = False
        kept.append(line)
    return "".join(kept)


_OVERWRITTEN = re.compile(r"^[^\n]*\r(?=[^\n])", re.MULTILINE)  # a line's text up to its last \r, as a terminal shows


def clean_stream(name: str, text: str) -> str:
    """A stream's text as a terminal shows it (``\\r`` applied), without transient noise: progress bars (both
    streams), log records, JVM lines and the machine's warnings (stderr)."""
    return _drop_noise_lines(_OVERWRITTEN.sub("", text), logs=name == "stderr")


# ------------------------------------------------------------------------------------------------------ storage

_EXECUTION_METADATA = ("execution", "ExecuteTime")


def clean_for_storage(executed, original_metadata: dict | None = None):
    """A copy of the executed notebook ``executed`` to store: the notebook's metadata as it was before execution
    (``original_metadata``; nbclient adds ``language_info`` and widget state), no execution timestamps in cell
    metadata, one stdout and one stderr output per cell without progress bars, log records or JVM lines, and no
    stream left empty by that. Execution counts are kept (1, 2, ... in cell order: deterministic)."""
    nb = copy.deepcopy(executed)
    if original_metadata is not None:
        nb.metadata = copy.deepcopy(original_metadata)
    for cell in nb.cells:
        for key in _EXECUTION_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        outputs = []
        streams: dict[str, dict] = {}
        for out in cell.outputs:
            if out.output_type == "stream":
                if out.name in streams:
                    streams[out.name]["text"] += out.text
                    continue
                streams[out.name] = out
            outputs.append(out)
        for out in streams.values():
            out.text = clean_stream(out.name, out.text)
        cell.outputs = [o for o in outputs if not (o.output_type == "stream" and not o.text.strip())]
    return nb


# ------------------------------------------------------------------------------------------------ comparison

_NUM = r"(?<![\w.])[-+]?\d[\d,_]*(?:\.\d+)?(?:[eE][-+]?\d+)?"


def _path_prefixes() -> list[tuple[re.Pattern, str]]:
    """(prefix, placeholder), longest first: where this checkout, its venv and the home directory are (they differ
    between machines and checkouts)."""
    prefixes = {
        str(Path.home()): "~",
        str(ROOT): "<repo>",
        str(Path(sys.prefix).resolve()): "<venv>",
        sys.prefix: "<venv>",
    }
    ordered = sorted(((p, ph) for p, ph in prefixes.items() if len(p) > 1), key=lambda kv: -len(kv[0]))
    return [(re.compile(re.escape(p) + r"(?![\w.-])"), ph) for p, ph in ordered]


_PATH_PREFIXES = _path_prefixes()
_TEMP_ROOTS = sorted({tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir()), "/tmp", "/var/folders"}, key=len)
_TEMP_PATH = re.compile(
    r"(?:/private)?(?:" + "|".join(re.escape(t) for t in reversed(_TEMP_ROOTS)) + r")(?![\w.-])(?:/[^\s'\"<>:,;)\]}]*)?"
)

#: (pattern, replacement), applied in order to every text compared: what legitimately varies from run to run
MASKS: list[tuple[re.Pattern, str]] = [
    (_TEMP_PATH, "<tmp>"),
    # cluster, scheduler and worker addresses (dask: tcp://127.0.0.1:40125, inproc://10.0.0.5/4711/3)
    (re.compile(r"\b(?:tcp|tls|inproc|ucx|ws|wss)://[^\s'\"<>,)\]}]+"), "<address>"),
    # URLs of local services with a port: dask's dashboard, Spark's UI
    (re.compile(r"\bhttps?://[^\s/'\"<>:]+:\d+[^\s'\"<>]*"), "<url>"),
    (re.compile(r"\b(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-fA-F:]+\]):\d+\b"), "<host:port>"),
    (re.compile(r"\b(port)([=: ]\s*)\d+\b", re.IGNORECASE), r"\1\2<port>"),
    (re.compile(r"\b(pid|process id)([=: ]\s*)\d+\b", re.IGNORECASE), r"\1\2<pid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x<address>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    # hex ids (dask's cluster and key tokens, widget model ids): 8+ hex digits with both a digit and a letter
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"), "<id>"),
    # Spark application ids carry their start time: local-1796187128972, app-20250131120000-0003
    (re.compile(r"\b(?:local|app)-\d{10,}(?:-\d+)?\b"), "<spark-app-id>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<timestamp>"),
    (re.compile(r"(?<![\w:])\d+:\d\d:\d\d(?:\.\d+)?\b"), "<duration>"),
    # rates: 12,345 items/s, 1.2k it/s, 85.3 MB/s, 3/s
    (re.compile(_NUM + r"\s*[kKMGT]?(?:i?B|[A-Za-z]+)?/s(?:ec)?\b"), "<rate>"),
    # timings: 0.532 s, 12ms, 3.1 µs, 2 seconds, 1.5 min
    (re.compile(_NUM + r"\s*(?:ns|µs|us|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hours?)\b"), "<time>"),
    # memory sizes: 1.5 GiB, 300 MB, 512 bytes
    (re.compile(_NUM + r"\s*(?:[kKMGTP]i?B|bytes)\b"), "<size>"),
]


def mask(text: str) -> str:
    """``text`` with what legitimately varies between runs (paths of this checkout, temporary paths, addresses,
    ports, pids, ids, Spark application ids, timestamps, timings, rates, memory sizes) replaced by placeholders."""
    for prefix, placeholder in _PATH_PREFIXES:
        text = prefix.sub(placeholder, text)
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


_SVG_BLOCK = re.compile(r"<svg\b.*?</svg>", re.DOTALL | re.IGNORECASE)
_TOKEN = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<[!?][^>]*>"  # comments (graphviz's version), doctype, processing instructions
    r"|</\s*([\w:-]+)\s*>"  # end tag
    r"|<([\w:-]+)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>"  # start tag; quoted attribute values may hold '>'
    r"|([^<]+)",  # text
    re.DOTALL,
)
_ATTR = re.compile(r"([\w:-]+)\s*=\s*(\"[^\"]*\"|'[^']*')")
#: attributes that carry structure or words rather than layout: kept when an SVG is compared
_SVG_KEPT_ATTRS = ("id", "class", "xlink:title", "title", "xlink:href", "href", "aria-label")


def _words(text: str) -> str:
    return " ".join(html.unescape(text).replace("\xa0", " ").split())


def svg_structure(svg: str) -> list[str]:
    """The structure of an SVG as lines, one per element that has an id, a class, a tooltip or a link (its tag and
    those attributes) and one per text (``text: ...``, ``title: ...``; consecutive texts of one element joined, so
    where a label wraps does not count), indented by depth. Coordinates, sizes, colours, fonts and the renderer's
    comments are left out: they vary with the fonts installed and graphviz's version, while the labels and the nodes
    and edges they belong to do not."""
    lines: list[str] = []
    stack: list[str] = []
    for m in _TOKEN.finditer(svg):
        end_tag, tag, attrs, self_closing, text = m.groups()
        if end_tag:
            name = end_tag.lower()
            while stack:  # tolerate unbalanced markup
                if stack.pop() == name:
                    break
        elif tag:
            name = tag.lower()
            kept = {k: html.unescape(v[1:-1]) for k, v in _ATTR.findall(attrs) if k.lower() in _SVG_KEPT_ATTRS}
            if kept:
                shown = " ".join(f"{k}={_words(v)!r}" for k, v in kept.items())
                lines.append(f"{'  ' * len(stack)}<{name} {shown}>")
            if not self_closing:
                stack.append(name)
        elif text and text.strip() and stack:
            line = f"{'  ' * len(stack)}{stack[-1]}: "
            if lines and lines[-1].startswith(line):  # the next line of a wrapped label: where it wraps is layout
                lines[-1] += " " + _words(text)
            else:
                lines.append(line + _words(text))
    return [mask(line) for line in lines]


def _text_lines(text: str) -> list[str]:
    """Text compared line by line, masked, without trailing spaces and blank lines at the ends."""
    lines = [mask(line).rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def _mime_lines(mime: str, value) -> list[str]:
    if not isinstance(value, str):  # JSON data (widget views, application/json, ...)
        return _text_lines(json.dumps(value, sort_keys=True, indent=1))
    if mime == "image/svg+xml":
        return svg_structure(value)
    if mime.startswith(("image/", "video/", "audio/")) or mime == "application/pdf":
        return ["<binary data>"]  # a rendered plot: its pixels vary with the data's timings, its presence does not
    if "svg" in value.lower() and _SVG_BLOCK.search(value):  # HTML with an inline SVG picture
        parts: list[str] = []
        last = 0
        for m in _SVG_BLOCK.finditer(value):
            parts += _text_lines(value[last : m.start()]) + svg_structure(m.group(0))
            last = m.end()
        return parts + _text_lines(value[last:])
    return _text_lines(value)


def _is_progress_widget(out) -> bool:
    data = out.get("data", {})
    return "application/vnd.jupyter.widget-view+json" in data and bool(_TQDM.search(data.get("text/plain", "")))


def canonical_cell(cell) -> list[str]:
    """What is compared of a code cell's outputs, as text lines: the displays and results in order (each mime type
    of each, normalized), then the cell's stdout and stderr text. Streams are compared as one text each, whatever
    chunks they arrived in and wherever their first chunk landed among the displays."""
    lines: list[str] = []
    streams = {"stdout": "", "stderr": ""}
    for out in cell.get("outputs", []):
        kind = out.output_type
        if kind == "stream":
            streams[out.name] = streams.get(out.name, "") + out.text
        elif kind == "error":
            lines.append(f"[error] {out.ename}: {mask(out.evalue)}")
        elif kind in ("execute_result", "display_data", "update_display_data"):
            if _is_progress_widget(out):
                continue
            for mime in sorted(out.get("data", {})):
                lines.append(f"[{kind} {mime}]")
                lines += ["  " + line for line in _mime_lines(mime, out.data[mime])]
        else:
            lines.append(f"[{kind}]")
    for name, text in streams.items():
        kept = [line for line in _text_lines(clean_stream(name, text)) if name == "stdout" or line.strip()]
        if kept:
            lines.append(f"[{name}]")
            lines += ["  " + line for line in kept]
    return lines


def code_cells(nb) -> list[tuple[int, dict]]:
    return [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def missing_outputs(stored, executed) -> list[int]:
    """Indices of the code cells that display something when executed but have no outputs stored."""
    return [
        i
        for (i, run), (_, kept) in zip(code_cells(executed), code_cells(stored))
        if canonical_cell(run) and not canonical_cell(kept)
    ]


def differing_cells(stored, executed) -> list[int]:
    """Indices of the code cells whose stored outputs do not match the executed ones."""
    return [
        i
        for (i, run), (_, kept) in zip(code_cells(executed), code_cells(stored))
        if canonical_cell(run) != canonical_cell(kept)
    ]


def cell_diff(stored, executed, index: int, max_lines: int = 120) -> str:
    """A unified diff of one cell's normalized outputs, stored vs executed, headed by the cell's first line."""
    source = executed.cells[index].source.strip().splitlines()
    first = source[0] if source else "empty"
    head = f"cell {index} ({first}{' ...' if len(source) > 1 else ''})"
    diff = list(
        difflib.unified_diff(
            canonical_cell(stored.cells[index]),
            canonical_cell(executed.cells[index]),
            fromfile=f"{head}, stored",
            tofile=f"{head}, executed now",
            lineterm="",
        )
    )
    if len(diff) > max_lines:
        diff = diff[:max_lines] + [f"... ({len(diff) - max_lines} more diff lines)"]
    return "\n".join(diff)


def compare_report(name: str, stored, executed) -> str | None:
    """None when the stored outputs of notebook ``name`` match the executed ones; else a readable explanation:
    which cells have no stored outputs, and the diff of the first differing cell."""
    if [c.source for c in stored.cells] != [c.source for c in executed.cells]:
        return f"{name}: the executed notebook's cells differ from the stored one's"
    missing = missing_outputs(stored, executed)
    differing = differing_cells(stored, executed)
    if not differing:
        return None
    refresh = "refresh the stored outputs with `.venv/bin/python notebooks/execute.py` and review the diff"
    parts = []
    if missing:
        parts.append(
            f"{name}: code cells {missing} display output when executed but have none stored "
            f"(was the notebook saved without its outputs?); {refresh}"
        )
    else:
        parts.append(f"{name}: the stored outputs of code cells {differing} no longer match a fresh run; {refresh}")
    parts.append(f"first differing cell ({'-' * 3} stored, +++ executed now, after normalizing):")
    parts.append(cell_diff(stored, executed, differing[0]))
    return "\n".join(parts)
