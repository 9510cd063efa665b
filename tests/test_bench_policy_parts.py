"""hieros-bench policy_parts: per-part times of the acting step, and the agent left unchanged."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.bench.agent import build
from hieros_pl.bench.policy_parts import bench_policy_parts_at, timed_parts


def test_parts_cover_every_level_and_add_up_to_the_step() -> None:
    figures = {figure["name"]: figure for figure in bench_policy_parts_at(3, "tiny", 2)}
    value = {name: figure["value"] for name, figure in figures.items()}
    step = value.pop("depth3/policy_step")
    assert step > 0
    for level in range(3):
        for part in ("world_model_step", "world_model_step/encoder", "world_model_step/s5_stack"):
            assert value[f"depth3/level{level}/{part}"] > 0, (level, part)
        inner = sum(
            value[f"depth3/level{level}/world_model_step/{part}"]
            for part in ("encoder", "s5_stack", "posterior")
        )
        assert inner <= value[f"depth3/level{level}/world_model_step"]
    # Level i acts on every 4**i-th env step: its world-model step is counted that often.
    calls = [
        figures[f"depth3/level{level}/world_model_step"]["calls_per_step"] for level in range(3)
    ]
    assert calls == [1.0, 1 / 4, 1 / 16]
    top = sum(
        number
        for name, number in value.items()
        if name.split("/")[-1] in ("world_model_step", "actor_features", "actor")
    )
    assert value["depth3/other"] == pytest.approx(step - top, abs=1e-6)


def test_counters_are_removed_after_the_measurement() -> None:
    cfg, module = build(["hierarchy=depth1", "size=tiny", "env=atari100k"])
    size = cfg.env.image_size
    world_model = module.hierarchy.levels[0].world_model
    with timed_parts(module) as counters:
        assert "obs_step" in vars(world_model)
        world_model.encoder(torch.zeros(1, size, size, 3, dtype=torch.uint8))
        assert counters.seconds["level0/world_model_step/encoder"] > 0
        assert counters.calls["level0/world_model_step/encoder"] == 1
    assert "obs_step" not in vars(world_model)
    assert "forward" not in vars(world_model.encoder)
