"""squirrel-core's catalog file format (``!YamlCatalog``, ``!YamlSource``, ``!CatalogKey``) with PyYAML's safe loader
and dumper; it handles documents only, :mod:`squirrel_graph.io.catalog` turns them into catalogs and back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import IO, Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from squirrel_graph.io.catalog_records import CatalogFormatError, CatalogKey, is_version

__all__ = [
    "CATALOG_FORMAT_VERSION",
    "MIN_CATALOG_VERSION",
    "CatalogDumper",
    "CatalogLoader",
    "CatalogYaml",
    "YamlCatalog",
    "YamlSource",
    "check_catalog_document",
    "parse_catalog_document",
    "prep_yaml",
]

#: The ``version:`` written into catalog files: the squirrel-core release whose catalog format this mirrors, so that
#: squirrel-core (which asserts ``version >= 0.4``) loads our files. squirrel_graph's own version goes in a comment.
CATALOG_FORMAT_VERSION = "0.20.2"
#: Catalog files older than this (squirrel-core < 0.4) used another layout and are refused.
MIN_CATALOG_VERSION = (0, 4)

_MAP_TAG = "tag:yaml.org,2002:map"


@dataclass
class YamlSource:
    """One version of a source as it is written in a catalog file (tag ``!YamlSource``)."""

    identifier: str
    driver_name: str
    driver_kwargs: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class YamlCatalog:
    """A catalog file's document (tag ``!YamlCatalog``): the format version and a flat list of sources."""

    version: str = CATALOG_FORMAT_VERSION
    sources: list[YamlSource] = field(default_factory=list)


class CatalogLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus squirrel-core's catalog tags; nothing else is constructed."""


class CatalogDumper(yaml.SafeDumper):
    """PyYAML's safe dumper plus squirrel-core's catalog tags (and tuples / dict subclasses as plain YAML)."""

    def ignore_aliases(self, data: Any) -> bool:
        """Never write anchors: versions that share one kwargs dict are written out in full, each."""
        return True


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"


def _mapping_node(node: yaml.Node, tag: str) -> MappingNode:
    if not isinstance(node, MappingNode):
        raise CatalogFormatError(f"{tag} at {_where(node)} must be a mapping")
    return node


def _construct_fields(loader: CatalogLoader, node: MappingNode, tag: str, names: tuple[str, ...]) -> dict[str, Any]:
    data = loader.construct_mapping(node, deep=True)
    unknown = [k for k in data if k not in names]
    if unknown:
        raise CatalogFormatError(f"{tag} at {_where(node)}: unknown field(s) {unknown}; expected {list(names)}")
    return data


def _construct_yaml_source(loader: CatalogLoader, node: yaml.Node) -> YamlSource:
    node = _mapping_node(node, "!YamlSource")
    names = ("identifier", "driver_name", "driver_kwargs", "version", "metadata")
    data = _construct_fields(loader, node, "!YamlSource", names)
    for required in ("identifier", "driver_name"):
        if not isinstance(data.get(required), str):
            raise CatalogFormatError(f"!YamlSource at {_where(node)}: {required!r} must be a string")
    version = data.get("version", 1)
    if isinstance(version, str) and version.strip().isdigit():
        version = int(version)
    if not is_version(version) or version <= 0:
        raise CatalogFormatError(f"!YamlSource at {_where(node)}: version must be a positive int, got {version!r}")
    kwargs = {}
    for name in ("driver_kwargs", "metadata"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise CatalogFormatError(f"!YamlSource at {_where(node)}: {name!r} must be a mapping")
        kwargs[name] = value or {}
    return YamlSource(data["identifier"], data["driver_name"], version=version, **kwargs)


def _construct_yaml_catalog(loader: CatalogLoader, node: yaml.Node) -> YamlCatalog:
    node = _mapping_node(node, "!YamlCatalog")
    version: str | None = None
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            continue
        if key_node.value == "version":
            if not isinstance(value_node, ScalarNode):
                raise CatalogFormatError(f"!YamlCatalog at {_where(node)}: 'version' must be a scalar")
            version = value_node.value  # the text as written: 0.10 must not become the float 0.1
        elif key_node.value == "sources" and isinstance(value_node, SequenceNode):
            for item in value_node.value:  # untagged entries are sources too
                if isinstance(item, MappingNode) and item.tag == _MAP_TAG:
                    item.tag = "!YamlSource"
    data = _construct_fields(loader, node, "!YamlCatalog", ("version", "sources"))
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, YamlSource) for s in sources):
        raise CatalogFormatError(f"!YamlCatalog at {_where(node)}: 'sources' must be a list of !YamlSource")
    return YamlCatalog(version=CATALOG_FORMAT_VERSION if version is None else version, sources=sources)


def _construct_catalog_key(loader: CatalogLoader, node: yaml.Node) -> CatalogKey:
    if not isinstance(node, SequenceNode):
        raise CatalogFormatError(f"!CatalogKey at {_where(node)} must be a sequence")
    return CatalogKey(*loader.construct_sequence(node, deep=True))


CatalogLoader.add_constructor("!YamlCatalog", _construct_yaml_catalog)
CatalogLoader.add_constructor("!YamlSource", _construct_yaml_source)
CatalogLoader.add_constructor("!CatalogKey", _construct_catalog_key)


def _represent_yaml_catalog(dumper: CatalogDumper, data: YamlCatalog) -> yaml.Node:
    return dumper.represent_mapping("!YamlCatalog", [("version", data.version), ("sources", data.sources)])


def _represent_yaml_source(dumper: CatalogDumper, data: YamlSource) -> yaml.Node:
    names = ("identifier", "driver_name", "driver_kwargs", "version", "metadata")
    return dumper.represent_mapping("!YamlSource", [(n, getattr(data, n)) for n in names])


def _represent_catalog_key(dumper: CatalogDumper, data: CatalogKey) -> yaml.Node:
    return dumper.represent_sequence("!CatalogKey", list(data))


CatalogDumper.add_representer(YamlCatalog, _represent_yaml_catalog)
CatalogDumper.add_representer(YamlSource, _represent_yaml_source)
CatalogDumper.add_representer(CatalogKey, _represent_catalog_key)
CatalogDumper.add_multi_representer(tuple, CatalogDumper.represent_list)
CatalogDumper.add_multi_representer(dict, CatalogDumper.represent_dict)


class CatalogYaml:
    """What :func:`prep_yaml` returns: ``load``/``dump`` like the ruamel object squirrel-core used, but safe."""

    def load(self, stream: str | bytes | IO[Any]) -> Any:
        """Parse one YAML document with the catalog tags; an untagged ``version``/``sources`` mapping is a catalog."""
        loader = CatalogLoader(stream)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                keys = {k.value for k, _ in node.value if isinstance(k, ScalarNode)}
                if "sources" in keys and keys <= {"version", "sources"}:
                    node.tag = "!YamlCatalog"
            return loader.construct_document(node)
        finally:
            loader.dispose()

    def dump(self, data: Any, stream: IO[str] | None = None) -> str | None:
        """Write ``data`` as block-style YAML in insertion order (to ``stream``, or return it as a string)."""
        text = yaml.dump(data, Dumper=CatalogDumper, default_flow_style=False, sort_keys=False, allow_unicode=True)
        if isinstance(data, YamlCatalog):
            from squirrel_graph import __version__

            text = f"# written by squirrel_graph {__version__}\n{text}"
        if stream is None:
            return text
        stream.write(text)
        return None


def prep_yaml() -> CatalogYaml:
    """A YAML reader/writer that knows ``!YamlCatalog``, ``!YamlSource`` and ``!CatalogKey`` (squirrel-core's tags)."""
    return CatalogYaml()


def parse_catalog_document(text: str) -> Any:
    """Load YAML text with the catalog tags; an empty document is a CatalogFormatError."""
    data = prep_yaml().load(text)
    if data is None:
        raise CatalogFormatError("the YAML document is empty; expected a !YamlCatalog")
    return data


_VERSION_RE = re.compile(r"^\s*v?(\d+)(?:\.(\d+))?")


def _parse_format_version(version: Any) -> tuple[int, int]:
    match = _VERSION_RE.match(str(version))
    if match is None:
        raise CatalogFormatError(f"catalog file version {version!r} is not a version number")
    return int(match.group(1)), int(match.group(2) or 0)


def check_catalog_document(document: Any) -> YamlCatalog:
    """``document`` if it is a :class:`YamlCatalog` of format 0.4 or later; a CatalogFormatError otherwise."""
    if not isinstance(document, YamlCatalog):
        raise CatalogFormatError(f"expected a !YamlCatalog document, got {type(document).__name__}")
    parsed = _parse_format_version(document.version)
    if parsed < MIN_CATALOG_VERSION:
        minimum = ".".join(map(str, MIN_CATALOG_VERSION))
        raise CatalogFormatError(
            f"catalog file version {document.version} is older than {minimum}; files written by squirrel-core before"
            f" {minimum} use another layout and are not supported"
        )
    return document
