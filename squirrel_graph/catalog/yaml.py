"""squirrel-core compatible path ``squirrel.catalog.yaml``: the catalog YAML format (PyYAML, safe loader/dumper)."""

from squirrel_graph.io.catalog import catalog2yamlcatalog, catalog_to_yaml, yaml_to_catalog, yamlcatalog2catalog
from squirrel_graph.io.catalog_records import CatalogFormatError
from squirrel_graph.io.catalog_yaml import (
    CATALOG_FORMAT_VERSION,
    MIN_CATALOG_VERSION,
    CatalogDumper,
    CatalogLoader,
    CatalogYaml,
    YamlCatalog,
    YamlSource,
    prep_yaml,
)

__all__ = [
    "CATALOG_FORMAT_VERSION",
    "MIN_CATALOG_VERSION",
    "CatalogDumper",
    "CatalogFormatError",
    "CatalogLoader",
    "CatalogYaml",
    "YamlCatalog",
    "YamlSource",
    "catalog2yamlcatalog",
    "catalog_to_yaml",
    "prep_yaml",
    "yaml_to_catalog",
    "yamlcatalog2catalog",
]
