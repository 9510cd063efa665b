"""A tiny finished run and the hieros-probe command, shared by the probe tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hieros_pl.config import Config
from tests.conftest import tiny_catch_run


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path]:
    """A tiny catch run of 150 env steps (catch pays +1 or -1 at the end of each episode)."""
    run_dir = tmp_path_factory.mktemp("probed")
    return tiny_catch_run(run_dir, 150), run_dir


def hieros_probe(*arguments: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "hieros-probe"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(script), *arguments], capture_output=True, text=True, env=env, timeout=600
    )
