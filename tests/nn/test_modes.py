from __future__ import annotations

from torch import nn

from hieros_pl.nn.modes import evaluation_mode


class ModeSwitchCounter(nn.Module):
    """Counts calls of ``train`` (``eval`` calls ``train(False)``), each a walk of the subtree."""

    def __init__(self) -> None:
        super().__init__()
        self.switches = 0

    def train(self, mode: bool = True) -> ModeSwitchCounter:
        self.switches += 1
        return super().train(mode)


def test_evaluation_mode_switches_once_around_nested_uses() -> None:
    module = ModeSwitchCounter().train()
    module.switches = 0
    with evaluation_mode(module):
        for _ in range(3):
            with evaluation_mode(module):
                assert not module.training
    assert module.training
    assert module.switches == 2  # one eval() on entry, one train(True) on exit
