"""What a run ran: code version, command, config and its diff against the paper preset, library
versions, machine, SLURM and sweep ids, and the wandb identity (group, job type, tags, name).

Written once at the start of a run into ``<run_dir>/provenance.json`` and into the wandb config;
a resumed run appends its own record under ``resumed`` instead of overwriting the first.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hieros_pl.config import Config, config_diff

PROVENANCE_FILE = "provenance.json"
PACKAGES = ("torch", "lightning", "hydra-core", "gymnasium", "ale-py", "wandb", "numpy")
"""Distributions whose versions every run records."""
SLURM_VARIABLES = {
    "job_id": "SLURM_JOB_ID",
    "array_job_id": "SLURM_ARRAY_JOB_ID",
    "array_task_id": "SLURM_ARRAY_TASK_ID",
    "partition": "SLURM_JOB_PARTITION",
}
SWEEP_KEYS = ("seed", "env.game", "env.id", "run_dir")
"""Overrides that pick a job within a sweep; the rest of a job's overrides name its ablation."""


@dataclass
class RunIdentity:
    """How a run is named and grouped in wandb, and where it sits in a sweep.

    group: the sweep's name (a multirun) or ``cfg.name`` (a single run); ``logger.group``
    overrides it. job_type: the ablation, i.e. the job's overrides other than SWEEP_KEYS
    (``default`` when there are none). tags: ``group:option`` for every chosen config-group
    option. name: unique across sweeps (sweep name + job number + game + seed).
    """

    group: str
    job_type: str
    name: str
    tags: list[str] = field(default_factory=list)
    sweep_dir: str | None = None
    job_num: int | None = None
    overrides: list[str] = field(default_factory=list)


def run_identity(cfg: Config) -> RunIdentity:
    """The identity of this job from Hydra's runtime state; plain names outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    single = plain_identity(cfg)
    if not HydraConfig.initialized():
        return single
    hydra = HydraConfig.get()
    overrides = list(hydra.overrides.task)
    single.overrides = overrides
    single.tags = choice_tags(dict(hydra.runtime.choices))
    swept = set(OmegaConf.select(OmegaConf.structured(hydra), "sweeper.params") or {})
    single.job_type = ablation_of(overrides, swept)
    if hydra.mode != RunMode.MULTIRUN:
        return single
    sweep_dir = str(hydra.sweep.dir)
    sweep = Path(sweep_dir).name
    job_num = int(hydra.job.num)
    return RunIdentity(
        group=cfg.logger.group or sweep,
        job_type=single.job_type,
        name=f"{sweep}-{job_num}-{cfg.name}-seed{cfg.seed}",
        tags=single.tags,
        sweep_dir=sweep_dir,
        job_num=job_num,
        overrides=overrides,
    )


def plain_identity(cfg: Config) -> RunIdentity:
    """The identity of a run started outside a Hydra app (tests, notebooks): no tags."""
    return RunIdentity(cfg.logger.group or cfg.name, "default", f"{cfg.name}-seed{cfg.seed}")


def choice_tags(choices: dict[str, Any]) -> list[str]:
    """``group:option`` for every chosen config group, Hydra's own groups left out."""
    return sorted(
        f"{group}:{option}"[:64]  # wandb's tag length limit
        for group, option in choices.items()
        if option is not None and not group.startswith("hydra")
    )


def ablation_of(overrides: list[str], swept: set[str]) -> str:
    """A job's ablation: its overrides of the ``swept`` keys (a sweep file's
    ``hydra.sweeper.params``; all keys when empty) other than SWEEP_KEYS, sorted and joined
    (wandb job_type, ≤ 64 chars)."""
    keys = {override: override.split("=", 1)[0].lstrip("+~") for override in overrides}
    kept = sorted(
        override
        for override, key in keys.items()
        if key not in SWEEP_KEYS and not key.startswith("hydra") and (not swept or key in swept)
    )
    return (",".join(kept) or "default")[:64]


def code_version() -> dict[str, Any]:
    """Git commit and dirty flag of the installed package's checkout, else the wheel's version."""
    from hieros_pl import __version__

    root = Path(__file__).resolve().parents[1]
    version: dict[str, Any] = {"version": __version__, "commit": None, "dirty": None}
    try:
        commit = _git(root, "rev-parse", "HEAD")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        version["source"] = "installed package (no git checkout)"
        return version
    version |= {"commit": commit, "dirty": bool(status), "source": f"git checkout {root}"}
    return version


def _git(root: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return completed.stdout.strip()


def package_versions() -> dict[str, str | None]:
    """Installed versions of PACKAGES (None when one is not installed)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    """Python, host, CPU count, GPU model and CUDA version."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cuda": torch.version.cuda,
    }


def slurm_ids() -> dict[str, str] | None:
    """SLURM job and array ids from the environment, or None outside SLURM."""
    ids = {key: os.environ[name] for key, name in SLURM_VARIABLES.items() if name in os.environ}
    return ids or None


def collect(cfg: Config, preset: Config | None, identity: RunIdentity) -> dict[str, Any]:
    """The provenance record of a run (see the module docstring); JSON-serialisable."""
    from omegaconf import OmegaConf

    return {
        "code": code_version(),
        "command": [sys.executable, *sys.argv],
        "config": OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True),
        "config_diff_vs_paper_preset": None if preset is None else config_diff(cfg, preset),
        "packages": package_versions(),
        "machine": machine(),
        "slurm": slurm_ids(),
        "sweep": {"dir": identity.sweep_dir, "job_num": identity.job_num},
        "wandb": asdict(identity),
    }


def paper_preset() -> Config:
    """``experiment=atari100k``, composed inside a running Hydra app or standalone."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    from hieros_pl.builders import compose_config
    from hieros_pl.config import to_config

    if GlobalHydra.instance().is_initialized():
        return to_config(compose("train", overrides=["experiment=atari100k", "run_dir=unused"]))
    return compose_config(["experiment=atari100k"])


def write(run_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as ``<run_dir>/provenance.json``; a resume appends under ``resumed``."""
    path = run_dir / PROVENANCE_FILE
    if path.exists():
        first = json.loads(path.read_text())
        first.setdefault("resumed", []).append({k: v for k, v in record.items() if k != "config"})
        record = first
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str))
    return path


def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The provenance record of a run dir, or None if it has none."""
    path = Path(run_dir) / PROVENANCE_FILE
    return json.loads(path.read_text()) if path.exists() else None
