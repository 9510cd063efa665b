"""The decoded-subgoal video frames: observed frame | decoded goal, uint8, one row per sequence."""

from __future__ import annotations

import torch

from hieros_pl.data.batch import Batch
from hieros_pl.hierarchy.decode import subgoal_images
from hieros_pl.module import HierosModule
from hieros_pl.videos.subgoals import observed_beside_goal
from tests.conftest import compose


def test_frames_put_the_observation_beside_its_decoded_goal() -> None:
    cfg = compose("hierarchy=depth2")
    module = HierosModule(cfg, (16, 16, 3), True, 3, discrete=True)
    B, T, h = 2, 5, cfg.world_model.deter
    obs = torch.randint(0, 256, (B, T, 16, 16, 3), dtype=torch.uint8)
    batch = Batch(
        obs=obs,
        action=torch.zeros(B, T, 3),
        reward=torch.zeros(B, T),
        is_first=torch.zeros(B, T, dtype=torch.bool),
        is_last=torch.zeros(B, T, dtype=torch.bool),
        is_terminal=torch.zeros(B, T, dtype=torch.bool),
        subgoal=torch.randn(B, T, h),
        subgoal_code=torch.zeros(B, T, module.specs[0].goal_code_dim),
    )
    frames = observed_beside_goal(module.hierarchy, batch)
    assert frames.shape == (T, B * 16, 2 * 16, 3) and frames.dtype.name == "uint8"
    with torch.no_grad():
        goals = subgoal_images(module.hierarchy, 0, batch.subgoal)
    for b in range(B):
        rows = slice(b * 16, (b + 1) * 16)
        assert (frames[:, rows, :16] == obs[b].numpy()).all()
        assert (frames[:, rows, 16:] == goals[b].numpy()).all()


def test_level1_frames_show_what_it_saw_above_its_decoded_goal() -> None:
    from hieros_pl.hierarchy.decode import observation_images
    from hieros_pl.videos.subgoals import seen_above_goal

    cfg = compose("hierarchy=depth3")
    module = HierosModule(cfg, (16, 16, 3), True, 3, discrete=True)
    spec = module.specs[1]
    B, T, K = 2, 3, cfg.hierarchy.stride
    batch = Batch(
        obs=torch.randn(B, T, *spec.obs_shape),
        action=torch.zeros(B, T, spec.action_dim),
        reward=torch.zeros(B, T),
        is_first=torch.zeros(B, T, dtype=torch.bool),
        is_last=torch.zeros(B, T, dtype=torch.bool),
        is_terminal=torch.zeros(B, T, dtype=torch.bool),
        subgoal=torch.randn(B, T, cfg.world_model.deter),
        subgoal_code=torch.zeros(B, T, spec.goal_code_dim),
    )
    frames = seen_above_goal(module.hierarchy, 1, batch)
    assert frames.shape == (T, B * 2 * 16, K * 16, 3) and frames.dtype.name == "uint8"
    seen = observation_images(module.hierarchy, 1, batch.obs)
    goals = subgoal_images(module.hierarchy, 1, batch.subgoal)
    assert seen.shape == goals.shape == (B, T, K, 16, 16, 3)
    for k in range(K):
        columns = slice(k * 16, (k + 1) * 16)
        assert (frames[:, :16, columns] == seen[0, :, k].numpy()).all()
        assert (frames[:, 16:32, columns] == goals[0, :, k].numpy()).all()
