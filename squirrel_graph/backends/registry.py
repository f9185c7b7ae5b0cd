"""The registry of backends: each backend package declares ``BACKEND`` (a :class:`BackendSpec`) in its
``__init__``; the compiler finds them here, validates their options and asks them to lower nodes.

Adding a backend is adding a package under ``squirrel_graph/backends/`` with its declaration; nothing else lists
backends.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from squirrel_graph.backends.lowering import Backend


@dataclass(frozen=True)
class BackendSpec:
    """What a backend declares: its name, how to build it, the ``compile(...)`` options it accepts (name ->
    validator that raises naming the option), and whether it runs a driver's per-key stages as one task per shard
    key (``per_key_engine``, read by the offload pass)."""

    name: str
    doc: str
    make: Callable[[Mapping[str, Any], bool], Backend]  # (its options, chosen by compile(backend=...)) -> backend
    options: Mapping[str, Callable[[Any], None]] = field(default_factory=dict)
    per_key_engine: str | None = None
    fallback: bool = False  # the shared runtime that runs every node kind nobody else claims (lowered last)


@functools.cache
def registered() -> dict[str, BackendSpec]:
    """Every backend declared by a package under ``squirrel_graph.backends``, by name (found once per process)."""
    found: dict[str, BackendSpec] = {}
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        spec = getattr(importlib.import_module(f"{__package__}.{info.name}"), "BACKEND", None)
        if isinstance(spec, BackendSpec):
            found[spec.name] = spec
    return found


def check_backend(backend: str, options: Mapping[str, Any]) -> BackendSpec:
    """The spec of ``backend`` after validating ``options`` against what it declares (errors name the option)."""
    specs = registered()
    if backend not in specs:
        raise ValueError(f"compile(backend=...): unknown backend {backend!r}; known backends: {sorted(specs)}")
    spec = specs[backend]
    for name, value in options.items():
        if name not in spec.options:
            owners = sorted(b for b, s in specs.items() if name in s.options)
            hint = f"; only backend {' or '.join(repr(o) for o in owners)} accepts it" if owners else ""
            raise ValueError(f"compile({name}=...): backend {backend!r} takes no option {name!r}{hint}")
        spec.options[name](value)
    return spec


def backends_for(backend: str, common: Mapping[str, Any], own: Mapping[str, Any]) -> list[Backend]:
    """Backends in lowering preference: the chosen one, the other specialists, then the shared-runtime fallback
    (last even when chosen: it claims every node kind, so the specialists must be asked first).

    Every backend gets the ``common`` compile options (``inline``); only the chosen one gets its ``own``."""
    specs = registered()
    chosen = specs[backend]
    order = sorted(specs.values(), key=lambda s: (s.fallback, s is not chosen))  # the fallback always lowers last
    return [s.make({**common, **own} if s is chosen else dict(common), s is chosen) for s in order]
