"""Spark and squirrel stores: ``write_store`` (a DataFrame or RDD into a store, from the executors, exactly once
under task retries), ``read_store`` (a store as a DataFrame) and, through ``stream.compile(backend="spark")``, a
driver's per-key stages as Spark tasks (:mod:`squirrel_graph.backends.spark`).

pyspark (the ``spark`` extra) is imported only when one of them runs. How columns map to samples and back:
:mod:`squirrel_graph.spark.columns` (and binary tensor columns: :mod:`squirrel_graph.spark.tensors`); the commit
protocol: :mod:`squirrel_graph.spark.commit`.
"""

from squirrel_graph.spark.commit import Attempt, WriteJob
from squirrel_graph.spark.reader import read_store
from squirrel_graph.spark.tensors import tensor_field, tensor_metadata
from squirrel_graph.spark.writer import write_store

__all__ = ["Attempt", "WriteJob", "read_store", "tensor_field", "tensor_metadata", "write_store"]
