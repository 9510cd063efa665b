"""The shared-world-model ablation, hierarchy.shared_world_model (README, Implementation)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from hieros_pl.hierarchy.hierarchy import Hierarchy, build_level_specs
from hieros_pl.hierarchy.shared import (
    JointImaginationModel,
    goal_codes_from_above,
    shared_behavior_losses,
)
from hieros_pl.train import run
from tests.conftest import compose

FAST = ("debug=fast", "callbacks.checkpoint_every=100000", "train_ratio=32")


def _shared_hierarchy(levels: int) -> Hierarchy:
    cfg = compose(f"hierarchy=depth{levels}", "hierarchy.shared_world_model=true")
    return Hierarchy(cfg, build_level_specs(cfg, (16, 16, 3), True, 3, discrete=True))


def test_levels_above_zero_own_no_world_model() -> None:
    hierarchy = _shared_hierarchy(3)
    level0 = hierarchy.levels[0].world_model
    for subactor in hierarchy.levels[1:]:
        assert subactor.world_model is level0 and not subactor.owns_world_model
        assert "world_model" not in subactor.parameter_groups()
    keys = hierarchy.state_dict().keys()
    assert not any(
        key.startswith(("subactors.1.world_model", "subactors.2.world_model")) for key in keys
    )
    own = _hierarchy_parameters(compose("hierarchy=depth3"))
    assert sum(p.numel() for p in hierarchy.parameters()) < own


def _hierarchy_parameters(cfg) -> int:
    hierarchy = Hierarchy(cfg, build_level_specs(cfg, (16, 16, 3), True, 3, discrete=True))
    return sum(p.numel() for p in hierarchy.parameters())


def test_joint_imagination_steps_level0_with_a_code() -> None:
    hierarchy = _shared_hierarchy(3)
    levels = hierarchy.levels
    start = levels[0].world_model.initial(5, torch.device("cpu"))
    model = JointImaginationModel(levels, 2)
    code = (
        levels[2]
        .actor_critic.actor(torch.cat([levels[0].world_model.actor_features(start)], -1))
        .sample()
    )
    state = model.imagine_step(start, code)
    assert state.deter.shape == start.deter.shape
    goal = goal_codes_from_above(levels, 1, start)
    assert goal.shape == (5, levels[1].spec.goal_code_dim)
    assert goal_codes_from_above(levels, 2, start).shape == (5, 0)


def _updates(tmp_path: Path, depth: int, steps: int) -> tuple[list[int], int, set[str]]:
    run_dir = tmp_path / f"depth{depth}"
    cfg = compose(
        *FAST,
        f"hierarchy=depth{depth}",
        "hierarchy.shared_world_model=true",
        f"env_steps={steps}",
        "logger.log_every=100",
        f"run_dir={run_dir}",
    )
    module = run(cfg)
    with open(run_dir / "csv" / "metrics.csv") as handle:
        keys = set(next(csv.reader(handle)))
    return module.updates.tolist(), int(module.train_calls), keys


def test_shared_world_model_trains_end_to_end_at_depth_2(tmp_path: Path) -> None:
    updates, calls, keys = _updates(tmp_path, depth=2, steps=160)
    assert updates[0] == calls and 1 <= updates[1] <= calls // 4 + 1
    assert "level1/behavior/actor_loss" in keys and "level1/subgoal/codes_used" in keys
    assert not any(key.startswith("level1/wm/") for key in keys)


def test_shared_world_model_trains_end_to_end_at_depth_3(tmp_path: Path) -> None:
    updates, calls, keys = _updates(tmp_path, depth=3, steps=320)
    # Every level keeps its schedule: level i trains on calls c ≡ 0 mod 4**i once its replay
    # holds a batch (level 1 after ~12 calls, level 2 after ~32 at this size).
    assert updates[0] == calls
    assert calls // 4 - 4 <= updates[1] <= calls // 4 + 1
    assert 1 <= updates[2] <= calls // 16 + 1
    assert "level1/behavior/actor_loss" in keys and "level2/behavior/actor_loss" in keys
    assert "level2/subgoal_ae/reconstruction" in keys
    assert not any(key.startswith(("level1/wm/", "level2/wm/")) for key in keys)


@pytest.mark.parametrize("imag_gradient", ["reinforce", "dynamics"])
def test_shared_behaviour_step_reaches_only_the_level_own_parts(imag_gradient: str) -> None:
    cfg = compose(
        "hierarchy=depth2",
        "hierarchy.shared_world_model=true",
        f"behavior.imag_gradient={imag_gradient}",
    )
    hierarchy = Hierarchy(cfg, build_level_specs(cfg, (16, 16, 3), True, 3, discrete=True))
    levels = hierarchy.levels
    trainable = [p.requires_grad for p in hierarchy.parameters()]
    posterior = levels[0].world_model.initial(6, torch.device("cpu"))
    posterior = posterior.map(lambda x: x.reshape(2, 3, *x.shape[1:]))
    output = shared_behavior_losses(levels, 1, posterior, torch.zeros(2, 3, dtype=torch.bool))
    total = output.actor_loss + sum(output.critic_losses.values())
    total = total + sum(output.autoencoder_losses.values())
    total.backward()
    assert all(p.grad is None for p in levels[0].parameters())
    assert any(p.grad is not None for p in levels[1].actor_critic.actor_parameters())
    assert sorted(output.critic_losses) == ["extrinsic", "novelty"]
    assert [p.requires_grad for p in hierarchy.parameters()] == trainable
