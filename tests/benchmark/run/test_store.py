"""The results store: states, the lock (and its soft fallback), failures, what readers see."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing
import warnings

import pytest

from benchmark.run.store import RunStore
from tests.benchmark.core.sample_spec import SPEC


def hold_lock(out: str, run_id: str, ready, release) -> None:
    with RunStore(out).lock(run_id) as mine:
        assert mine
        ready.set()
        release.wait(30)


def test_states_follow_the_protocol(tmp_path):
    store = RunStore(tmp_path)
    run_id = SPEC.run_id
    assert store.state(run_id) == "pending"
    store.write_spec(SPEC)
    store.save_checkpoint(run_id, {"step": 5})
    assert store.state(run_id) == "incomplete"
    store.validate_checkpoint(SPEC)  # its own checkpoint: accepted
    store.record_failure(run_id, RuntimeError("boom\nsecond line"))
    assert store.state(run_id) == "failed"
    assert store.failure_reason(run_id) == "RuntimeError: boom"
    assert store.load(run_id).status == "failed: RuntimeError: boom"
    store.clear_failure(run_id)
    store.finish(run_id, [{"split": "test", "miou": 0.5}])
    assert store.state(run_id) == "done"
    assert not (store.run_dir(run_id) / "checkpoint.pt").exists()
    loaded = store.load(run_id)
    assert loaded.state == "done" and loaded.records == [{"split": "test", "miou": 0.5}]
    assert json.loads((store.run_dir(run_id) / "spec.json").read_text())["run_id"] == run_id


def test_a_run_locked_by_another_process_is_busy(tmp_path):
    store = RunStore(tmp_path)
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=hold_lock, args=(str(tmp_path), "r1", ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        assert store.state("r1") == "busy"
        with store.lock("r1") as mine:
            assert not mine
    finally:
        release.set()
        holder.join(30)
    assert store.state("r1") == "pending"  # the lock died with its holder
    with store.lock("r1") as mine:
        assert mine


def test_without_flock_the_lock_falls_back_to_a_soft_lock(tmp_path, monkeypatch):
    """Some network and FUSE file systems have no flock: the lock must still exclude."""

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOSYS, "flock not supported")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    store = RunStore(tmp_path / "nfs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # filelock warns once that it falls back
        with store.lock("r2") as mine:
            assert mine
            with store.lock("r2") as second:
                assert not second
        with store.lock("r2") as again:
            assert again


def test_a_damaged_run_is_unreadable_not_fatal(tmp_path):
    store = RunStore(tmp_path)
    store.write_spec(SPEC)
    store.finish(SPEC.run_id, [{"split": "test"}])
    (store.run_dir(SPEC.run_id) / "records.jsonl").write_text("{not json\n")
    (tmp_path / "runs" / "garbage").mkdir()
    runs = {run.run_id: run for run in store.scan()}
    assert runs[SPEC.run_id].state == "unreadable"
    assert runs[SPEC.run_id].status.startswith("unreadable: records")
    assert runs["garbage"].state == "unreadable" and runs["garbage"].spec is None


def test_a_foreign_checkpoint_is_refused(tmp_path):
    store = RunStore(tmp_path)
    store.save_checkpoint("someone_else", {"step": 1})
    (store.run_dir(SPEC.run_id)).mkdir(parents=True)
    (store.run_dir("someone_else") / "checkpoint.pt").rename(
        store.run_dir(SPEC.run_id) / "checkpoint.pt"
    )
    with pytest.raises(Exception, match="checkpoint of run 'someone_else'"):
        store.validate_checkpoint(SPEC)


@pytest.mark.parametrize(
    "name", [".checkpoint.pt.ab12cd.tmp", ".records.jsonl.x.tmp", ".done.1.tmp"]
)
def test_a_write_killed_midway_leaves_nothing_after_the_next_start(tmp_path, name):
    """A kill between mkstemp and rename leaves `.<file>.<random>.tmp`; whoever takes the run's
    lock next removes it (every writer of a run directory holds that lock)."""
    store = RunStore(tmp_path)
    run_id = SPEC.run_id
    store.write_spec(SPEC)
    orphan = store.run_dir(run_id) / name
    orphan.write_bytes(b"half a checkpoint")
    keep = store.run_dir(run_id) / "spec.json"
    with store.lock(run_id) as mine:
        assert mine and not orphan.exists() and keep.exists()


def test_old_temporary_files_at_the_top_of_out_go_on_the_next_claim(tmp_path):
    """Leaderboards and reports are written without a lock: only stale leftovers are removed."""
    import os
    import time

    store = RunStore(tmp_path)
    store.claim()
    (tmp_path / "report").mkdir()
    stale = [tmp_path / ".leaderboard.csv.k1.tmp", tmp_path / "report" / ".report.md.k2.tmp"]
    live = tmp_path / ".leaderboard.csv.k3.tmp"
    for path in (*stale, live):
        path.write_text("partial")
    hours_ago = time.time() - 2 * 3600
    for path in stale:
        os.utime(path, (hours_ago, hours_ago))
    store.claim()
    assert not any(p.exists() for p in stale) and live.exists()
