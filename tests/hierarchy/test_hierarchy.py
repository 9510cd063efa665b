"""Acting timing of the hierarchy (ALGORITHM.md §15, D5, D9): who acts when, what is stored."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.config import Config
from hieros_pl.hierarchy.hierarchy import Hierarchy, LevelRecord, build_level_specs
from tests.conftest import compose

OBS_SHAPE = (16, 16, 3)
ACTIONS = 3


def _hierarchy(cfg: Config) -> Hierarchy:
    specs = build_level_specs(cfg, OBS_SHAPE, True, ACTIONS, discrete=True)
    return Hierarchy(cfg, specs).eval()


def _play(
    hierarchy: Hierarchy, rewards: list[float], last: int, steps: int, num_envs: int = 1
) -> list[list[LevelRecord | None]]:
    """Act through an episode whose is_first is at 0 and is_last at ``last``; next one follows."""
    carry = hierarchy.initial_carry(num_envs, torch.device("cpu"))
    history = []
    for t in range(steps):
        obs = torch.randint(0, 255, (num_envs, *OBS_SHAPE), dtype=torch.uint8)
        flags = [torch.full((num_envs,), value) for value in (t in (0, last + 1), t == last)]
        reward = torch.full((num_envs,), rewards[t])
        _, carry, records = hierarchy.act(
            obs, reward, flags[0], flags[1], flags[1], carry, "train", active_levels=3
        )
        history.append(records)
    return history


def _stores(record: LevelRecord | None) -> bool:
    """Whether env 0 stores a row (None: the level did not act at all on that step)."""
    return record is not None and bool(record.mask[0])


def _row(records: list[LevelRecord | None], level: int) -> LevelRecord:
    record = records[level]
    assert record is not None, f"level {level} did not act"
    return record


def _acting_steps(history: list[list[LevelRecord | None]], level: int) -> list[int]:
    return [t for t, records in enumerate(history) if _stores(records[level])]


def test_levels_act_on_their_grid_with_a_closing_step() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth3"))
    history = _play(hierarchy, [0.0] * 45, last=38, steps=45)
    assert _acting_steps(history, 0) == list(range(45))
    assert _acting_steps(history, 1) == [*range(0, 37, 4), 38, 39, 43]
    assert _acting_steps(history, 2) == [0, 16, 32, 38, 39]


def test_one_first_and_one_last_row_per_episode_at_every_level() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth3"))
    history = _play(hierarchy, [0.0] * 39, last=38, steps=39)
    for level in range(3):
        rows = [_row(records, level) for records in history if _stores(records[level])]
        assert sum(int(row.is_first[0]) for row in rows) == 1
        assert sum(int(row.is_last[0]) for row in rows) == 1
        assert bool(rows[0].is_first[0]) and bool(rows[-1].is_last[0])


def test_higher_level_rewards_are_interval_means_including_the_terminal_step() -> None:
    rewards = [float(t) for t in range(39)]
    hierarchy = _hierarchy(compose("hierarchy=depth3"))
    history = _play(hierarchy, rewards, last=38, steps=39)
    level1 = {t: float(_row(history[t], 1).reward[0]) for t in _acting_steps(history, 1)}
    assert level1[0] == 0.0
    assert level1[4] == pytest.approx(sum(rewards[1:5]) / 4)
    assert level1[38] == pytest.approx(sum(rewards[37:39]) / 4)
    level2 = {t: float(_row(history[t], 2).reward[0]) for t in _acting_steps(history, 2)}
    assert level2[16] == pytest.approx(sum(rewards[1:17]) / 16)
    assert level2[38] == pytest.approx(sum(rewards[33:39]) / 16)
    assert float(_row(history[38], 0).reward[0]) == 38.0


def test_terminal_reward_original_drops_the_last_reward() -> None:
    rewards = [1.0] * 39
    hierarchy = _hierarchy(compose("hierarchy=depth3", "compat.terminal_reward_original=true"))
    history = _play(hierarchy, rewards, last=38, steps=39)
    assert float(_row(history[38], 0).reward[0]) == 0.0
    assert float(_row(history[38], 1).reward[0]) == 0.0


def test_original_grid_ignores_episode_boundaries() -> None:
    hierarchy = _hierarchy(
        compose("hierarchy=depth3", "compat.higher_level_episodes_original=true")
    )
    history = _play(hierarchy, [0.0] * 45, last=38, steps=45)
    assert _acting_steps(history, 1) == list(range(0, 45, 4))
    assert _acting_steps(history, 2) == [0, 16, 32]


def test_subgoal_code_of_level_above_reaches_level_below_rows() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth2"))
    history = _play(hierarchy, [0.0] * 12, last=30, steps=12)
    code_from_above = _row(history[4], 1).action[0]
    for t in range(4, 8):
        assert torch.equal(_row(history[t], 0).subgoal_code[0], code_from_above)
        assert (history[t][1] is None) == (t != 4)  # level 1 decides only on its grid
    assert float(code_from_above.sum()) == compose().hierarchy.subgoal_groups
    assert _row(history[0], 1).obs.shape == (1, 4 * (8 * 8 + 64))


def test_inactive_levels_emit_no_rows() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth3"))
    carry = hierarchy.initial_carry(2, torch.device("cpu"))
    obs = torch.zeros(2, *OBS_SHAPE, dtype=torch.uint8)
    flags = torch.tensor([True, True]), torch.tensor([False, False])
    _, _, records = hierarchy.act(
        obs, torch.zeros(2), flags[0], flags[1], flags[1], carry, "train", active_levels=1
    )
    assert bool(_row(records, 0).mask.all()) and records[1] is None


def test_greedy_and_sample_modes_emit_no_rows() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth2"))
    carry = hierarchy.initial_carry(1, torch.device("cpu"))
    obs = torch.zeros(1, *OBS_SHAPE, dtype=torch.uint8)
    first, last = torch.tensor([True]), torch.tensor([False])
    for mode in ("greedy", "sample"):
        action, _, records = hierarchy.act(obs, torch.zeros(1), first, last, last, carry, mode, 2)
        assert not any(record is not None and bool(record.mask.any()) for record in records)
        assert action.shape == (1, ACTIONS) and float(action.sum()) == pytest.approx(1.0)


def test_original_episodes_clear_every_accumulator_at_an_episode_end() -> None:
    # Depth 2, K = 4 on the global grid: level 1 acts at steps 0, 4, 8. The episode ends at
    # step 2, off its grid; the original clears the accumulator there, so the row stored at
    # step 4 holds only the rewards of steps 3 and 4 (2 × 1/4), not of steps 1-4.
    hierarchy = _hierarchy(
        compose("hierarchy=depth2", "compat.higher_level_episodes_original=true")
    )
    history = _play(hierarchy, [1.0] * 9, last=2, steps=9)
    assert _acting_steps(history, 1) == [0, 4, 8]
    assert float(_row(history[4], 1).reward[0]) == pytest.approx(0.5)
    assert float(_row(history[8], 1).reward[0]) == pytest.approx(1.0)


def test_records_carry_the_categorical_each_action_came_from() -> None:
    hierarchy = _hierarchy(compose("hierarchy=depth2"))
    carry = hierarchy.initial_carry(4, torch.device("cpu"))
    first, last = torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)
    for step in range(6):
        obs = torch.randint(0, 255, (4, *OBS_SHAPE), dtype=torch.uint8)
        action, carry, records = hierarchy.act(
            obs, torch.zeros(4), first, last, last, carry, "greedy", 2
        )
        first = torch.zeros(4, dtype=torch.bool)
        probs = _row(records, 0).action_probs
        assert probs is not None and probs.shape == (4, ACTIONS)
        torch.testing.assert_close(probs.sum(-1), torch.ones(4))
        # Greedy level 0 takes the argmax of exactly this distribution, goal included.
        torch.testing.assert_close(action.argmax(-1), probs.argmax(-1), msg=f"step {step}")
        if step % 4 == 0:  # level 1 acts from grouped codes: no single categorical to report
            assert _row(records, 1).action_probs is None
