"""Decoded subgoals as level-0 images (hieros_pl/hierarchy/decode.py)."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.hierarchy.decode import goal_from_code, subgoal_images
from hieros_pl.hierarchy.hierarchy import Hierarchy, build_level_specs
from hieros_pl.nn.symlog import symlog
from tests.conftest import compose

OBS_SHAPE = (16, 16, 3)


def _hierarchy(*overrides: str) -> Hierarchy:
    cfg = compose(*overrides)
    return Hierarchy(cfg, build_level_specs(cfg, OBS_SHAPE, True, 3, discrete=True)).eval()


def _reconstruction(world_model, feature: torch.Tensor) -> torch.Tensor:
    return (world_model.decode(feature) * 255.0).round().to(torch.uint8)


@pytest.mark.parametrize("dynamics", ["s5wm", "rssm"])
def test_goal_at_the_current_state_decodes_to_its_reconstruction(dynamics: str) -> None:
    # Where z is the prior mode at h (the learned initial state; with the RSSM any prior mode
    # step), a goal g̃ = symlog(h) decodes to exactly the world model's reconstruction.
    hierarchy = _hierarchy("hierarchy=depth2", f"world_model={dynamics}")
    world_model = hierarchy.levels[0].world_model
    with torch.no_grad():
        state = world_model.initial(2, torch.device("cpu"))
        if dynamics == "rssm":
            state = world_model.imagine_step(state, torch.eye(3)[[0, 2]], sample=False)
        images = subgoal_images(hierarchy, 0, symlog(state.deter))
        expected = _reconstruction(world_model, state.feature())
    assert images.dtype == torch.uint8 and images.shape == (2, *OBS_SHAPE)
    assert (images.int() - expected.int()).abs().max() <= 1


def test_level_1_goal_decodes_to_its_stack_of_level_0_frames() -> None:
    hierarchy = _hierarchy("hierarchy=depth3")
    code = torch.zeros(5, hierarchy.levels[1].spec.goal_code_dim)
    code[:, 0] = 1.0
    goal = goal_from_code(hierarchy, 1, code)
    images = subgoal_images(hierarchy, 1, goal)
    assert images.dtype == torch.uint8 and images.shape == (5, hierarchy.fifo_len, *OBS_SHAPE)
    assert subgoal_images(hierarchy, 0, goal_from_code(hierarchy, 0, code)).shape == (
        5,
        *OBS_SHAPE,
    )
    with pytest.raises(ValueError, match="level 2 holds no subgoal"):
        subgoal_images(hierarchy, 2, goal)


def test_shared_world_model_goals_decode_in_level_0_space() -> None:
    hierarchy = _hierarchy("hierarchy=depth3", "hierarchy.shared_world_model=true")
    goal = torch.randn(4, hierarchy.levels[0].world_model.cfg.deter)
    assert subgoal_images(hierarchy, 1, goal).shape == (4, *OBS_SHAPE)
