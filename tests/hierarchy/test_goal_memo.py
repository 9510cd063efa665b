"""The decoded goal g̃ a level holds is computed when the code is handed down, not every step:
it equals a fresh decode of the held code on every step, and the decoder runs only on steps where
the level above acts."""

from __future__ import annotations

import pytest
import torch

from hieros_pl.behavior.imagination import evaluation_mode
from hieros_pl.hierarchy.subactor import Subactor
from hieros_pl.module import HierosModule
from tests.conftest import compose

E = 2


def _module() -> HierosModule:
    cfg = compose("hierarchy=depth3", "hierarchy.activate_every=1")
    module = HierosModule(cfg, (16, 16, 3), True, 3, discrete=True)
    module.env_steps.fill_(10)  # every level active
    return module


def test_held_goal_equals_a_fresh_decode_on_every_step() -> None:
    module = _module()
    carry = module.hierarchy.initial_carry(E, torch.device("cpu"))
    first = torch.ones(E, dtype=torch.bool)
    no = torch.zeros(E, dtype=torch.bool)
    with torch.no_grad(), evaluation_mode(module):
        for step in range(40):
            obs = torch.randint(0, 256, (E, 16, 16, 3), dtype=torch.uint8)
            flags = first if step == 0 else no
            _, carry, _ = module.act(obs, torch.zeros(E), flags, no, no, carry, "train")
            for subactor, level in zip(module.hierarchy.levels, carry.levels):
                if subactor.spec.goal_code_dim:
                    fresh = subactor.decode_goal(level.goal_code)
                    torch.testing.assert_close(level.goal, fresh, rtol=0, atol=0)


def test_decoder_runs_only_when_the_level_above_acts(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module()
    calls: list[int] = []
    original = Subactor.decode_goal

    def counted(self: Subactor, code: torch.Tensor) -> torch.Tensor:
        calls.append(self.spec.level)
        return original(self, code)

    carry = module.hierarchy.initial_carry(E, torch.device("cpu"))
    monkeypatch.setattr(Subactor, "decode_goal", counted)
    no = torch.zeros(E, dtype=torch.bool)
    obs = torch.zeros(E, 16, 16, 3, dtype=torch.uint8)
    with torch.no_grad(), evaluation_mode(module):
        for _ in range(16):  # one K² cycle from episode step 0 (K = 4)
            _, carry, _ = module.act(obs, torch.zeros(E), no, no, no, carry, "train")
    # Level 1 hands a code to level 0 every 4 steps (4 times), level 2 to level 1 once.
    assert sorted(calls) == [0, 0, 0, 0, 1]
