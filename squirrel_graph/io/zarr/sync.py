"""squirrel-core's ``squirrel.zarr.sync``: a zarr thread synchronizer whose per-key lock table stays bounded.

``SquirrelThreadSynchronizer`` subclasses ``zarr.sync.ThreadSynchronizer`` and is built on first access (zarr<3).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from squirrel_graph.io.zarr.lazy import import_zarr, lazy_classes

__all__ = ["SquirrelThreadSynchronizer"]

#: lock-table size at which idle locks are dropped (squirrel-core's value)
MAX_LOCKS = 1000


class KeyLock:
    """The lock of one key; it counts the threads that took it and have not released it yet, so that the table only
    drops a lock nobody is between taking and releasing (a dropped lock in use would let two writers in)."""

    __slots__ = ("_lock", "_mutex", "users")

    def __init__(self, mutex: Any) -> None:
        self._lock = threading.Lock()
        self._mutex = mutex
        self.users = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Like ``threading.Lock.acquire``; a failed try counts as giving the lock back."""
        got = self._lock.acquire(blocking, timeout)
        if not got:
            self._leave()
        return got

    def release(self) -> None:
        """Release the lock and give it back to the table."""
        self._lock.release()
        self._leave()

    def locked(self) -> bool:
        """Whether some thread holds the lock."""
        return self._lock.locked()

    def _leave(self) -> None:
        with self._mutex:
            self.users = max(0, self.users - 1)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _SynchronizerMethods:
    """squirrel-core's synchronizer: zarr's per-key thread locks, with idle locks dropped once the table is full."""

    mutex: Any
    locks: Any

    def __init__(self) -> None:
        super().__init__()  # zarr's ThreadSynchronizer: self.mutex and self.locks
        self.locks: dict[str, KeyLock] = {}
        self.max_len = MAX_LOCKS

    def __getitem__(self, item: str) -> KeyLock:
        """The lock of ``item`` (the same object for every caller until all of them released it); take it for
        each use, as zarr does with ``with synchronizer[key]:``."""
        with self.mutex:
            if len(self.locks) >= self.max_len:
                self._remove_unlocked_locks()
            lock = self.locks.get(item)
            if lock is None:
                lock = self.locks[item] = KeyLock(self.mutex)
            lock.users += 1
            return lock

    def _remove_unlocked_locks(self) -> None:
        """Drop the locks no thread holds or is about to acquire (called with ``self.mutex`` held)."""
        for key in [k for k, lock in self.locks.items() if lock.users == 0 and not lock.locked()]:
            del self.locks[key]


def _build_synchronizer() -> type:
    import_zarr()
    from zarr.sync import ThreadSynchronizer

    doc = {"__doc__": _SynchronizerMethods.__doc__}
    return type("SquirrelThreadSynchronizer", (_SynchronizerMethods, ThreadSynchronizer), doc)


__getattr__ = lazy_classes(globals(), {"SquirrelThreadSynchronizer": _build_synchronizer})

if TYPE_CHECKING:
    from zarr.sync import ThreadSynchronizer

    class SquirrelThreadSynchronizer(_SynchronizerMethods, ThreadSynchronizer):
        """What type checkers see; the runtime class is built by ``_build_synchronizer``."""
