"""Shared test setup: keep every test off the network and out of the repository."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


import pytest  # noqa: E402

#: ``make test`` installs every extra, so there a test skipped for a missing import is a broken install, not a skip
REQUIRE_EXTRAS = os.environ.get("SQUIRREL_GRAPH_REQUIRE_EXTRAS") == "1"
MISSING = "could not import"  # what pytest.importorskip's skip says


def _missing_extra(report) -> str | None:
    if not (REQUIRE_EXTRAS and report.skipped):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason if MISSING in reason else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    reason = _missing_extra(report)
    if reason:
        report.outcome = "failed"
        report.longrepr = f"SQUIRREL_GRAPH_REQUIRE_EXTRAS=1 and an extra is missing: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    report = (yield).get_result()
    reason = _missing_extra(report)
    if reason:
        report.outcome = "failed"
        report.longrepr = f"SQUIRREL_GRAPH_REQUIRE_EXTRAS=1 and an extra is missing: {reason}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API (moto in server mode) on 127.0.0.1, for the whole test run; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    env = {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_options(s3_endpoint):
    """s3fs storage options pointing at the local moto server, and a fresh bucket."""
    import uuid

    import s3fs

    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_endpoint}}
    bucket = f"sg-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem(**options)
    fs.mkdir(bucket)
    fs.invalidate_cache()
    return bucket, options


@pytest.fixture(scope="session")
def dask_client():
    """A real dask.distributed LocalCluster (2 worker processes on 127.0.0.1), shared by the whole run."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


#: mutmut sets this in its stats, clean and mutant runs; there process-level caches filled by an earlier test (or
#: by mutmut's parent process, which forks every mutant) would hide a mutant in the code that fills them
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ


#: modules every pipeline runs through (the passes, the generated loop): under mutmut their mutants are judged by
#: the unit and pipeline tests, not by these integration files (stores, torch, numba), which reach them only on
#: paths the others cover and are ~45 s of the ~77 s a surviving mutant of a pass would otherwise cost; this can
#: only make the score lower (a mutant only they would kill counts as surviving)
BROAD_MODULES = ("optimizers.", "squirrel_graph.runtime.codegen.")
INTEGRATION_FILES = (
    "tests/test_numba.py",
    "tests/test_numba_chunks.py",
    "tests/test_stores.py",
    "tests/test_torch.py",
    "tests/test_torch_packing.py",
    "tests/faults/test_stalled_store.py",
)


def pytest_collection_modifyitems(session, config, items):
    """Under mutmut only: run a mutant's tests fastest first (durations from mutmut's own stats), so the ``-x``
    run of a killed mutant stops at a quick test instead of after the slow multi-second ones; and give each test
    without a timeout of its own 30 s + 5x its recorded duration (pytest-timeout, setup and teardown included),
    so a mutant that hangs a run (a lost wake-up, a pool never drained) costs seconds, not the 300 s default (the
    30 s cover session fixtures starting on a loaded machine). Mutants of :data:`BROAD_MODULES` skip the
    integration files."""
    if not UNDER_MUTMUT:
        return
    if os.environ["MUTANT_UNDER_TEST"].startswith(BROAD_MODULES):
        deselected = [item for item in items if item.nodeid.startswith(INTEGRATION_FILES)]
        if deselected and len(deselected) < len(items):
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.nodeid.startswith(INTEGRATION_FILES)]
    durations = _mutmut_durations()
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30.0 + 5.0 * durations.get(item.nodeid, 6.0)))


def _mutmut_durations() -> dict[str, float]:
    """Each test's duration in mutmut's stats run (mutmut runs the tests from inside mutants/); read again when
    the file changes (mutmut's parent process, whose memory every mutant's process inherits, rewrites it)."""
    stats = Path("mutmut-stats.json")
    return _read_durations(stats.stat().st_mtime_ns) if stats.exists() else {}


@functools.lru_cache(maxsize=1)
def _read_durations(mtime_ns: int) -> dict[str, float]:
    return json.loads(Path("mutmut-stats.json").read_text()).get("duration_by_test", {})


@pytest.fixture(autouse=UNDER_MUTMUT)
def _fresh_process_caches():
    """Under mutmut only: empty every content-keyed cache before a test so each test runs the code it names."""
    from squirrel_graph.backends import registry
    from squirrel_graph.runtime import codegen, inline

    inline._CACHE.clear()
    codegen._CODE_CACHE.clear()
    registry.registered.cache_clear()
    numba_backend = __import__("sys").modules.get("squirrel_graph.backends.numba")
    if numba_backend is not None:
        numba_backend._KERNELS.clear()
    yield
