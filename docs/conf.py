"""Sphinx configuration for the squirrel_graph documentation (offline: no intersphinx, no network).

The pages are executed when the site is built (myst-nb): every ``{code-cell}`` runs in a fresh kernel per page,
in a temporary folder, and what the page shows under it (text, tables, explain() pictures) is that run's output.
A cell that raises fails the build. Code that cannot run here (an S3 bucket, several ranks, a JVM) is a plain
fence whose code lives in ``docs/examples/``; ``tests/test_docs_examples.py`` runs those files and checks that
every plain ``python`` fence equals one of them.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

# autodoc imports the installed package (``pip install -e .`` in the venv); fall back to the checkout.
try:
    import squirrel_graph
except ImportError:  # pragma: no cover - only when the docs are built without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import squirrel_graph

# accessible-pygments (furo's code styles) calls logging.basicConfig(level=INFO) when pygments first loads it, which
# would print every INFO record of this process (nbclient's "Executing notebook with kernel") on stderr. Load it now
# and take back what it did to the root logger.
_root = logging.getLogger()
_handlers, _level = list(_root.handlers), _root.level
try:
    import a11y_pygments  # noqa: F401
except ImportError:  # pragma: no cover - furo without accessible-pygments
    pass
for _handler in [h for h in _root.handlers if h not in _handlers]:
    _root.removeHandler(_handler)
_root.setLevel(_level)

# The kernels that execute the pages get a profile of their own: they never read the builder's IPython startup
# files, and log errors only (ipykernel 7 warns on every start that its local TCP sockets are not encrypted).
# Third-party warnings we cannot fix are ignored there as in the test suite (pyproject.toml), so that any other
# output on stderr, a warning of ours included, stays a build error: torchdata 0.11's StatefulDataLoader calls
# torch.set_vital(), deprecated in torch 2.13, for every loader it creates.
_KERNEL_CONFIG = """\
c.IPKernelApp.log_level = "ERROR"
c.InteractiveShellApp.exec_lines = [
    "import warnings",
    "warnings.filterwarnings('ignore', \\"'set_vital' is deprecated\\", UserWarning, 'torchdata')",
]
"""
_ipython_dir = Path(tempfile.mkdtemp(prefix="squirrel-graph-docs-ipython-"))
atexit.register(shutil.rmtree, _ipython_dir, ignore_errors=True)
(_ipython_dir / "profile_default").mkdir()
(_ipython_dir / "profile_default" / "ipython_kernel_config.py").write_text(_KERNEL_CONFIG)
os.environ["IPYTHONDIR"] = str(_ipython_dir)

project = "squirrel_graph"
author = "squirrel_graph contributors"
copyright = "squirrel_graph contributors"
release = squirrel_graph.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_nb",  # includes myst_parser: .md pages, and pages with `file_format: mystnb` run as notebooks
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples", "jupyter_execute"]

myst_heading_anchors = 3

# Executed pages. "force": every build runs every page (CI starts from a clean tree, so a cache would not help).
nb_execution_mode = "force"
nb_execution_raise_on_error = True  # an exception in a cell fails the build
nb_execution_show_tb = True  # ... and the build log shows its traceback
nb_execution_timeout = 180  # seconds per cell; the slowest (numba compiles, DataLoader workers) take a few
nb_execution_in_temp = True  # pages write stores and files: into a temporary folder, never into docs/
nb_merge_streams = True  # stdout and stderr of a cell in one block, in the order they were written
nb_output_stderr = "warn"  # unexpected stderr (a warning, a log line) is a build warning, so with -W an error;
# cells whose stderr is the point (a logged warning) are tagged remove-stderr or show what they catch instead

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}

html_theme = "furo"
html_title = f"squirrel_graph {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "source_directory": "docs/",
    "navigation_with_keys": True,
}
