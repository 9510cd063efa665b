"""The run dir's guards: usable by this user, one writer at a time, and no silent config change
on resume.

``RunDirLock`` keeps ``<run_dir>/.lock`` (host, PID, SLURM job id) while a process trains there;
a second process stops with :class:`RunDirError`. A lock whose process is gone (same host, PID
not alive; or the same SLURM job requeued) is stale and taken over.

``compare_configs`` checks a rerun's config against the one recorded in the run dir: keys in
:data:`SAFE_TO_CHANGE` may differ (they are applied and logged), any other difference stops the
run with one line per key and its two values.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from hieros_pl.config import Config, flatten_keys
from hieros_pl.errors import RunDirError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"

SAFE_TO_CHANGE: tuple[str, ...] = (
    "env_steps",
    "run_dir",
    "name",
    "logger.*",
    "callbacks.checkpoint_every",
    "callbacks.eval_every",
    "callbacks.eval_episodes",
    "callbacks.periodic_eval_episodes",
    "callbacks.final_eval",
    "trainer.threads",
    "trainer.detect_anomaly",
)
"""Keys a resumed run may change: the budget, logging, evaluation and checkpoint intervals, and
settings that do not touch what is learned (patterns as in fnmatch)."""


def check_run_dir(run_dir: Path) -> None:
    """Raise RunDirError unless ``run_dir`` is a directory this user can read and write, or one
    it can create (its nearest existing ancestor is a directory it can write and search)."""
    existing = _nearest_existing(run_dir)
    if existing != run_dir:
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return
        raise RunDirError(
            f"run dir {run_dir} cannot be created or entered: {existing} is not a directory "
            "this user can write and search"
        )
    if not run_dir.is_dir():
        raise RunDirError(f"run dir {run_dir} is not a directory")
    if not os.access(run_dir, os.R_OK | os.W_OK | os.X_OK):
        raise RunDirError(f"run dir {run_dir} is not readable and writable by this user")


def _nearest_existing(path: Path) -> Path:
    """``path`` or its deepest ancestor that this user can see exists.

    A directory this user may not search hides what is inside it (``stat`` fails with EACCES):
    the answer is then that directory.
    """
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except PermissionError:
            continue
    return Path(path.anchor or ".")


def _leaves(cfg: Config) -> dict[str, Any]:
    return flatten_keys(OmegaConf.to_container(OmegaConf.structured(cfg), resolve=False))


def is_safe_to_change(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in SAFE_TO_CHANGE)


def compare_configs(recorded: Config, new: Config) -> tuple[list[str], list[str]]:
    """(applied, refused): ``key: recorded -> new`` lines for the safe and the other changes."""
    old, ours = _leaves(recorded), _leaves(new)
    applied: list[str] = []
    refused: list[str] = []
    for key in sorted(set(old) | set(ours)):
        if old.get(key) == ours.get(key):
            continue
        line = f"{key}: {old.get(key)!r} -> {ours.get(key)!r}"
        (applied if is_safe_to_change(key) else refused).append(line)
    return applied, refused


def check_resume_config(recorded: Config, new: Config, run_dir: Path) -> list[str]:
    """Raise RunDirError listing every unsafe change; return the safe ones (to log)."""
    applied, refused = compare_configs(recorded, new)
    if refused:
        raise RunDirError(
            f"the config differs from the one run dir {run_dir} was trained with; a resume may "
            f"only change {', '.join(SAFE_TO_CHANGE)}. Differences: " + "; ".join(refused)
        )
    return applied


class RunDirLock:
    """``<run_dir>/.lock`` held from :meth:`acquire` to :meth:`release` (see module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.held = False

    @staticmethod
    def _owner() -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        }

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._read()
                if owner is not None and not self._is_stale(owner):
                    raise RunDirError(
                        f"run dir {self.path.parent} is in use by process {owner.get('pid')} on "
                        f"host {owner.get('host')} (lock file {self.path}); wait for it to end "
                        "or choose another run_dir"
                    ) from None
                log.warning("removing the stale lock %s (owner %s is gone)", self.path, owner)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self._owner(), handle)
            self.held = True
            return
        raise RunDirError(f"could not take the lock {self.path}: another process keeps taking it")

    def _read(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # unreadable or half-written: treated as stale
        return owner if isinstance(owner, dict) else None

    def _is_stale(self, owner: dict[str, Any]) -> bool:
        ours = self._owner()
        if owner.get("slurm_job_id") and owner.get("slurm_job_id") == ours["slurm_job_id"]:
            return True  # the same SLURM job, requeued: its previous incarnation is gone
        if owner.get("host") != ours["host"]:
            return False  # cannot check a PID on another machine
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == ours["pid"]:
            return True  # no PID, or this very process left it behind
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, owned by another user
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
