"""LatentState batch operations (ALGORITHM.md §3.1)."""

from __future__ import annotations

import torch

from hieros_pl.world_models.latent import LatentState


def make_state(batch: tuple[int, ...], fill: float) -> LatentState:
    """S=2, Z=3, h=4, S5 carry [Nb=1, 2P=5] complex64, every field filled with `fill`."""
    return LatentState(
        stoch=torch.full((*batch, 2, 3), fill),
        deter=torch.full((*batch, 4), fill),
        logits=torch.full((*batch, 2, 3), fill),
        recurrent=torch.full((*batch, 1, 5), complex(fill, -fill), dtype=torch.complex64),
    )


def test_feature_is_flat_stoch_then_deter() -> None:
    state = LatentState(
        stoch=torch.arange(6.0).reshape(1, 2, 3),
        deter=torch.tensor([[10.0, 11.0, 12.0, 13.0]]),
        logits=torch.zeros(1, 2, 3),
        recurrent=torch.zeros(1, 4),
    )
    torch.testing.assert_close(
        state.feature(), torch.tensor([[0.0, 1, 2, 3, 4, 5, 10, 11, 12, 13]])
    )


def test_where_selects_per_sample_for_every_field() -> None:
    ones, twos = make_state((3,), 1.0), make_state((3,), 2.0)
    mixed = ones.where(torch.tensor([True, False, True]), twos)
    assert mixed.recurrent.dtype == torch.complex64
    for tensor, expected in [
        (mixed.stoch, [1.0, 2.0, 1.0]),
        (mixed.deter, [1.0, 2.0, 1.0]),
        (mixed.logits, [1.0, 2.0, 1.0]),
        (mixed.recurrent.real, [1.0, 2.0, 1.0]),
    ]:
        torch.testing.assert_close(tensor.flatten(1)[:, 0], torch.tensor(expected))


def test_flatten_stack_and_at_round_trip() -> None:
    steps = [make_state((2,), float(t)) for t in range(3)]
    stacked = LatentState.stack(steps)
    assert stacked.batch_shape == (2, 3)
    assert stacked.recurrent.shape == (2, 3, 1, 5)
    torch.testing.assert_close(stacked.at(2).deter, steps[2].deter)
    flat = stacked.flatten()
    assert flat.batch_shape == (6,) and flat.stoch.shape == (6, 2, 3)
    torch.testing.assert_close(flat.deter[:, 0], torch.tensor([0.0, 1, 2, 0, 1, 2]))


def test_detach_drops_history() -> None:
    state = make_state((2,), 1.0).map(lambda tensor: tensor.requires_grad_())
    detached = state.detach()
    assert not any(t.requires_grad for t in (detached.stoch, detached.deter, detached.recurrent))
