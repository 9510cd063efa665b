"""Per-level subgoal diagnostics on scripted codes and latents (README, Logged metrics)."""

from __future__ import annotations

import math

import pytest
import torch

from hieros_pl.hierarchy.diagnostics import (
    LevelRows,
    SubgoalDiagnostics,
    code_entropy,
    codes_used,
)
from hieros_pl.hierarchy.hierarchy import Hierarchy, build_level_specs
from tests.conftest import compose


def one_hot_codes(classes_per_row: list[list[int]], classes: int) -> torch.Tensor:
    """[N, G*V] codes from the chosen class of each group."""
    rows = [torch.eye(classes)[row].flatten() for row in classes_per_row]
    return torch.stack(rows)


def test_code_entropy_of_a_known_histogram() -> None:
    # Group 0 picks classes 0, 0, 1, 1 (entropy ln 2), group 1 always class 3 (entropy 0).
    codes = one_hot_codes([[0, 3], [0, 3], [1, 3], [1, 3]], classes=4)
    assert float(code_entropy(codes, groups=2, classes=4)) == pytest.approx(math.log(2) / 2)
    uniform = one_hot_codes([[c, c] for c in range(4)], classes=4)
    assert float(code_entropy(uniform, groups=2, classes=4)) == pytest.approx(math.log(4))
    assert codes_used(codes) == 2 and codes_used(uniform) == 4


def _depth2():
    cfg = compose("hierarchy=depth2", "hierarchy.reach_threshold=0.9")
    specs = build_level_specs(cfg, (16, 16, 3), True, 3, discrete=True)
    return cfg, Hierarchy(cfg, specs)


def _rows(code: torch.Tensor, deter: torch.Tensor, goal: torch.Tensor, reward: float) -> LevelRows:
    n = deter.shape[0]
    mask = torch.ones(n, dtype=torch.bool)
    return LevelRows(mask, code, mask.clone(), deter, goal, torch.full((n,), reward))


def test_reach_rate_of_exactly_one_half_on_a_scripted_sequence() -> None:
    cfg, hierarchy = _depth2()
    h = cfg.world_model.deter
    e = torch.eye(h)
    diagnostics = SubgoalDiagnostics(2, 2, 4, cfg.hierarchy.reach_threshold)
    # Four steps of one env at level 0, all pursuing g̃ = e0. The state is on the goal's
    # direction at steps 0 and 1 (cosine 1) and orthogonal at steps 2 and 3 (cosine 0).
    states = [2.0 * e[0], 3.0 * e[0], 2.0 * e[1], 2.0 * e[2]]
    for step, state in enumerate(states):
        goal = e[0][None]
        diagnostics.add(0, _rows(torch.zeros(1, 0), state[None], goal, reward=float(step)))
    metrics = diagnostics.compute(hierarchy.levels, active_levels=2)
    assert metrics["level0/subgoal/reach_rate"] == 0.5
    assert metrics["level0/subgoal/cosine"] == pytest.approx(0.5)
    # Baseline: g̃ of step t against the state of step t+2 mod 4 (half a window away).
    assert metrics["level0/subgoal/cosine_baseline"] == pytest.approx(0.5)
    assert metrics["level0/reward/extrinsic"] == pytest.approx(1.5)
    # Max-cosine reward, symlog'd: s = symlog(c)·e0 with ‖s‖ > ‖g̃‖ = 1 gives g̃ᵀs / ‖s‖² =
    # 1 / symlog(c) = 1 / ln 3 and 1 / ln 4 at steps 0 and 1, and 0 at steps 2 and 3.
    expected = (math.log1p(1 / math.log(3)) + math.log1p(1 / math.log(4))) / 4
    assert metrics["level0/reward/subgoal"] == pytest.approx(expected)
    assert metrics["hierarchy/active_levels"] == 2.0
    assert "level0/subgoal/code_entropy" not in metrics  # level 0 sends no subgoals


def test_codes_of_closing_steps_and_other_envs_rows_are_left_out() -> None:
    cfg, hierarchy = _depth2()
    h = cfg.world_model.deter
    diagnostics = SubgoalDiagnostics(2, 2, 4, 0.9)
    codes = one_hot_codes([[0, 0], [1, 1], [2, 2]], classes=4)
    rows = LevelRows(
        mask=torch.tensor([True, True, False]),
        code=codes,
        hands_down=torch.tensor([True, False, True]),
        deter=torch.randn(3, h),
        goal=torch.zeros(3, 0),
        reward=torch.tensor([1.0, 2.0, 4.0]),
    )
    diagnostics.add(1, rows)
    metrics = diagnostics.compute(hierarchy.levels, active_levels=2)
    # Only env 0's code counts: env 1 closed its episode, env 2 stored no row.
    assert metrics["level1/subgoal/codes_used"] == 1.0
    assert metrics["level1/subgoal/code_entropy"] == 0.0
    assert metrics["level1/reward/extrinsic"] == pytest.approx(1.5)
    assert "level1/subgoal/reach_rate" not in metrics  # the top level pursues no goal
    diagnostics.reset()
    assert diagnostics.compute(hierarchy.levels, 2) == {"hierarchy/active_levels": 2.0}


def test_acting_fills_every_diagnostic_of_a_three_level_hierarchy() -> None:
    cfg = compose("hierarchy=depth3")
    specs = build_level_specs(cfg, (16, 16, 3), True, 3, discrete=True)
    hierarchy = Hierarchy(cfg, specs).eval()
    groups, classes = cfg.hierarchy.subgoal_groups, cfg.hierarchy.subgoal_classes
    diagnostics = SubgoalDiagnostics(3, groups, classes, 0.9)
    carry = hierarchy.initial_carry(2, torch.device("cpu"))
    for t in range(20):
        obs = torch.randint(0, 255, (2, 16, 16, 3), dtype=torch.uint8)
        first = torch.full((2,), t == 0)
        last = torch.zeros(2, dtype=torch.bool)
        _, carry, records = hierarchy.act(obs, torch.ones(2), first, last, last, carry, "train", 3)
        diagnostics.update(records, carry)
    metrics = diagnostics.compute(hierarchy.levels, 3)
    for level in (1, 2):
        assert 1 <= metrics[f"level{level}/subgoal/codes_used"] <= 2 * (20 // 4**level + 1)
        assert 0 <= metrics[f"level{level}/subgoal/code_entropy"] <= math.log(classes)
    for level in (0, 1):
        assert 0 <= metrics[f"level{level}/subgoal/reach_rate"] <= 1
        assert -1 <= metrics[f"level{level}/subgoal/cosine"] <= 1
        assert f"level{level}/reward/subgoal" in metrics
    assert "level1/reward/novelty" in metrics and "level2/reward/novelty" in metrics
