"""squirrel-core's benchmark helpers (``squirrel.benchmark``): shuffle randomness and msgpack caching.

Needs the ``benchmark`` extra (scipy, matplotlib, seaborn, pandas), imported only when a function needs it.
"""
