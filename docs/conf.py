"""Sphinx configuration for the squirrel_graph documentation (offline: no intersphinx, no network)."""

from __future__ import annotations

import sys
from pathlib import Path

# autodoc imports the installed package (``pip install -e .`` in the venv); fall back to the checkout.
try:
    import squirrel_graph
except ImportError:  # pragma: no cover - only when the docs are built without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import squirrel_graph

project = "squirrel_graph"
author = "squirrel_graph contributors"
copyright = "squirrel_graph contributors"
release = squirrel_graph.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}

html_theme = "alabaster"
html_title = f"squirrel_graph {release}"
