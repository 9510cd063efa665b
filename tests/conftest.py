"""Shared fixtures: compose the real conf/ with tiny sizes on CPU, and seed everything."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from hieros_pl.config import Config, register_configs, to_config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
TINY = ("size=tiny", "env=catch", "trainer=cpu", "logger=csv")

settings.register_profile("hieros", deadline=None, max_examples=25)
settings.load_profile("hieros")


@pytest.fixture(autouse=True)
def seed_everything() -> Iterator[None]:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def compose(*overrides: str, tiny: bool = True) -> Config:
    """Compose ``conf/train.yaml`` with the tiny defaults plus ``overrides`` and validate it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    base = list(TINY) if tiny else []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[*base, "run_dir=unused", *overrides])
    return to_config(cfg)


@pytest.fixture
def compose_config() -> Callable[..., Config]:
    return compose


def tiny_catch_run(run_dir: Path, env_steps: int) -> Config:
    """Train a tiny depth-1 catch run of ``env_steps`` into ``run_dir`` (for tests that read a
    finished run: evaluation, probes); returns its config."""
    from hieros_pl.train import run

    cfg = compose(
        "debug=fast",
        "hierarchy=depth1",
        f"env_steps={env_steps}",
        "train_ratio=32",
        f"run_dir={run_dir}",
    )
    run(cfg)
    return cfg
