"""squirrel-core compatible path ``squirrel.iterstream.metrics``."""

from squirrel_graph.metrics import MetricsConf, estimate_size, metrics_iops, metrics_throughput

__all__ = ["MetricsConf", "estimate_size", "metrics_iops", "metrics_throughput"]
