"""sweeps/hierarchy_depth.yaml composes into the depth experiment's runs (README)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "sweeps" / "hierarchy_depth.yaml"


def _job_config(*overrides: str) -> dict:
    command = [sys.executable, "-m", "hieros_pl.train", "--config-dir", str(SWEEP.parent)]
    command += ["--config-name", SWEEP.stem, *overrides, "--cfg", "job"]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return yaml.safe_load(output.stdout)


def test_depth_sweep_grid_is_depth_1_2_3_times_three_seeds() -> None:
    params = yaml.safe_load(SWEEP.read_text())["hydra"]["sweeper"]["params"]
    assert params["hierarchy"].split(",") == ["depth1", "depth2", "depth3"]
    assert len(str(params["seed"]).split(",")) >= 3


def test_depth_sweep_job_is_navigation_with_the_chosen_depth_and_any_env_by_override() -> None:
    job = _job_config("hierarchy=depth3", "seed=2")
    assert job["env"]["kind"] == "navigation" and job["env"]["grid_size"] == 12
    assert not job["env"]["vector_obs"]
    assert job["hierarchy"]["levels"] == 3 and job["seed"] == 2
    assert job["env_steps"] == 12000
    assert _job_config("hierarchy=depth1", "env=catch")["env"]["kind"] == "catch"
