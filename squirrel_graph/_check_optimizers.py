"""Import-time check that the top-level ``optimizers`` package is ours, not a user's ``optimizers.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MARKER = "squirrel-graph-optimizers-package"


def check_optimizers_package() -> None:
    """Raise ImportError naming the file that shadows squirrel_graph's ``optimizers`` package, if any.

    Only locates the module (``find_spec``); nothing is imported or executed.
    """
    loaded = sys.modules.get("optimizers")
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if loaded is None:
        spec = importlib.util.find_spec("optimizers")
        if spec is None:
            raise ImportError(
                "squirrel_graph needs its 'optimizers' package, installed beside it; reinstall squirrel_graph"
            )
        origin = spec.origin
    if origin is None or not _is_ours(Path(origin)):
        raise ImportError(
            f"squirrel_graph found a different 'optimizers' module at {origin}: it shadows squirrel_graph's own "
            "'optimizers' package. Rename that file or directory (or remove it from sys.path)."
        )


def _is_ours(origin: Path) -> bool:
    if origin.name != "__init__.py":
        return False
    sibling = Path(__file__).resolve().parent.parent / "optimizers" / "__init__.py"
    try:
        if origin.resolve() == sibling:
            return True
        return MARKER in origin.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
