"""Checkpoint and resume with real processes: a training script with ``StatefulDataLoader(num_workers=2)`` is
SIGKILLed mid-epoch and restarted from its last checkpoint in a new process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchdata")

from squirrel_graph.io.drivers import MessagepackDriver  # noqa: E402

SCRIPT = Path(__file__).with_name("checkpoint_train.py")
ROOT = Path(__file__).resolve().parents[1]


def write_store(url, n_shards=12, per_shard=10):
    store = MessagepackDriver(url).store
    for s in range(n_shards):
        store.set(
            [{"i": s * per_shard + j, "x": np.full(4, j, dtype=np.float32)} for j in range(per_shard)],
            key=f"shard-{s:02d}",
        )


def train(tmp_path, name, *extra):
    log = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--url",
            str(tmp_path / "store"),
            "--ckpt",
            str(tmp_path / "ckpt.pt"),
            "--log",
            str(log),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    batches = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, batches


@pytest.mark.slow
def test_a_sigkilled_training_run_resumes_from_its_last_checkpoint_with_exactly_the_remaining_batches(tmp_path):
    write_store(str(tmp_path / "store"))
    done, full = train(tmp_path, "full", "--every", "1000")
    assert done.returncode == 0, done.stderr
    assert len(full) >= 15 and len({i for b in full for i in b}) == sum(len(b) for b in full)

    killed, before = train(tmp_path, "killed", "--every", "3", "--kill-after", "11")
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup ran
    assert before == full[:11]
    ckpt = torch.load(tmp_path / "ckpt.pt", weights_only=False)
    assert ckpt["step"] == 9  # the last checkpoint before the kill
    workers = ckpt["loader"]["_snapshot"]["_worker_snapshots"]
    states = [w["dataset_state"] for w in workers.values()]
    # the pipeline's own state for every worker (where its stages are), not a count of batches to replay
    assert len(states) == 2 and all(s["format"] == "squirrel_graph.stream_state" and s["resumable"] for s in states)
    assert all(s["position"] is not None for s in states)

    resumed, after = train(tmp_path, "resumed", "--resume", "--every", "1000")
    assert resumed.returncode == 0, resumed.stderr
    assert after == full[9:]  # batches 10 and 11 were consumed after the checkpoint: consumed again, as in training


def ids_of(batch):
    return [int(s["i"]) for s in batch]


def batches_of(loader):
    return [[int(s["i"]) for s in b] for b in loader]


@pytest.mark.slow
def test_breaking_early_in_epochs_1_2_3_and_resuming_each_time_finishes_each_epoch_exactly(tmp_path):
    from torchdata.stateful_dataloader import StatefulDataLoader

    from squirrel_graph.checkpoint import StateMismatchError, merge_states

    sys.path.insert(0, str(SCRIPT.parent))
    from checkpoint_train import pipeline

    write_store(str(tmp_path / "store"), n_shards=8, per_shard=6)
    url = str(tmp_path / "store")
    epochs = []
    for epoch, stop in ((1, 2), (2, 5), (3, 1)):
        dataset = pipeline(url)
        dataset.set_epoch(epoch)
        full = batches_of(StatefulDataLoader(dataset, batch_size=None, num_workers=2))
        loader = StatefulDataLoader(dataset, batch_size=None, num_workers=2)
        head = []
        for batch in loader:
            head.append([int(s["i"]) for s in batch])
            if len(head) == stop:
                break
        state = loader.state_dict()
        restarted = pipeline(url)
        restarted.set_epoch(epoch)  # set_epoch across the resume: the state's epoch must match
        again = StatefulDataLoader(restarted, batch_size=None, num_workers=2)
        again.load_state_dict(state)
        assert head + batches_of(again) == full, f"epoch {epoch}, stopped after {stop}"
        workers = [w["dataset_state"] for w in state["_snapshot"]["_worker_snapshots"].values()]
        with pytest.raises(
            StateMismatchError, match=r"1 rank\(s\) x 2 worker\(s\); no state for \(rank, worker\) \[\(0, 1\)\]"
        ):
            merge_states(workers[0])  # one worker's state does not cover the run
        with pytest.raises(StateMismatchError, match="given twice"):
            merge_states(workers, workers[0])
        epochs.append(full)
    assert epochs[0] != epochs[1] != epochs[2]  # set_epoch reshuffles
