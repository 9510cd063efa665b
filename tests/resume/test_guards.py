"""What a run dir refuses: unpicklable or broken checkpoints, config changes, a second writer."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from hieros_pl.callbacks.checkpoint import load_checkpoint, save_atomically
from hieros_pl.errors import CheckpointError, RunDirError
from hieros_pl.run_dir import LOCK_FILE, RunDirLock, compare_configs
from hieros_pl.train import run
from tests.conftest import compose

RUN = ("hierarchy=depth1", "debug=fast", "env_steps=40", "callbacks.checkpoint_every=100000")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny catch run at its budget of 40 env steps (checkpoint, config, replay on disk)."""
    run_dir = tmp_path_factory.mktemp("finished")
    run(compose(*RUN, f"run_dir={run_dir}"))
    return run_dir


def _snapshot(run_dir: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}


class _RunsCode:
    """Unpickling this would create ``marker`` (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def test_a_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"env_steps": torch.tensor(1)}, "x": _RunsCode(marker)}, path)
    with pytest.raises(CheckpointError, match=rf"refusing checkpoint {path}: .*pickled object"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_truncated_checkpoint_stops_the_run_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    path.parent.mkdir()
    torch.save({"state_dict": {"env_steps": torch.tensor(5), "w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} is truncated or corrupt"):
        run(compose(*RUN, f"run_dir={tmp_path}"))
    assert not (tmp_path / "config.yaml").exists()  # never a silent fresh start


class _FullDiskTrainer:
    """Writes half a checkpoint, then fails as a full disk would."""

    def save_checkpoint(self, path: Path, weights_only: bool = False) -> None:
        Path(path).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    final = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"env_steps": torch.tensor(7)}}, final)
    with pytest.raises(CheckpointError, match=rf"could not write checkpoint {final}: No space"):
        save_atomically(_FullDiskTrainer(), final)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the temporary file is gone
    assert int(load_checkpoint(final)["state_dict"]["env_steps"]) == 7


def test_resume_with_a_changed_seed_stops_naming_seed(finished_run: Path) -> None:
    before = _snapshot(finished_run)
    with pytest.raises(RunDirError, match=r"Differences: seed: 0 -> 1$"):
        run(compose(*RUN, "seed=1", f"run_dir={finished_run}"))
    assert _snapshot(finished_run) == before  # nothing written


def test_safe_and_unsafe_changes_are_told_apart() -> None:
    old = compose(*RUN)
    new = compose(*RUN, "env_steps=80", "logger.log_every=7", "reward.weights.novelty=0.2")
    applied, refused = compare_configs(old, new)
    assert applied == ["env_steps: 40 -> 80", "logger.log_every: 50 -> 7"]
    assert refused == ["reward.weights.novelty: 0.1 -> 0.2"]


def test_resume_with_a_larger_budget_continues(tmp_path: Path, finished_run: Path) -> None:
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert int(saved["state_dict"]["env_steps"]) == 40
    module = run(compose(*RUN[:-2], "env_steps=52", f"run_dir={run_dir}"))
    assert int(module.env_steps) == 52
    assert int(module.train_calls) > int(saved["state_dict"]["train_calls"])
    buffer = module.trainer.datamodule.buffers[0]
    assert buffer.total_steps() == 52  # level 0 holds one row per env step, none twice


def test_a_second_process_on_the_run_dir_stops_with_the_lock_error(tmp_path: Path) -> None:
    lock = RunDirLock(tmp_path)
    lock.acquire()
    try:
        command = [sys.executable, "-m", "hieros_pl.train", "size=tiny", "env=catch"]
        command += ["logger=csv", "debug=fast", f"hydra.run.dir={tmp_path}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        lock.release()
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"hieros-train: run dir {tmp_path} is in use by process {os.getpid()} on host "
        f"{os.uname().nodename} (lock file {tmp_path / LOCK_FILE}); wait for it to end or choose "
        "another run_dir"
    )
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead_pid = int(finished.stdout)
    (tmp_path / LOCK_FILE).write_text(
        f'{{"host": "{os.uname().nodename}", "pid": {dead_pid}, "slurm_job_id": null}}'
    )
    lock = RunDirLock(tmp_path)
    lock.acquire()
    assert lock.held and f'"pid": {os.getpid()}' in (tmp_path / LOCK_FILE).read_text()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
