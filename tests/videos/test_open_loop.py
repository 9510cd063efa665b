"""Open-loop predictions: decoded frames have the env's image shape and dtype; the context part
follows the observations and the rest ignores them."""

from __future__ import annotations

from dataclasses import replace

import torch

from hieros_pl.data.batch import Batch
from hieros_pl.videos.open_loop import open_loop_prediction, side_by_side
from hieros_pl.world_models.world_model import WorldModel
from tests.conftest import compose


def _batch(B: int, T: int, size: int, A: int) -> Batch:
    generator = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=generator)
    action = torch.nn.functional.one_hot(torch.randint(0, A, (B, T), generator=generator), A)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    zeros = torch.zeros(B, T)
    return Batch(
        obs,
        action.float(),
        zeros,
        is_first,
        is_first.clone() & False,
        is_first.clone() & False,
        torch.zeros(B, T, 0),
        torch.zeros(B, T, 0),
    )


def test_prediction_has_the_image_shape_and_only_the_context_sees_observations() -> None:
    cfg = compose()
    size, A = cfg.env.image_size, 3
    model = WorldModel(cfg.world_model, (size, size, 3), True, A)
    batch = _batch(2, 10, size, A)
    prediction = open_loop_prediction(model, batch, context=4)
    assert prediction.shape == (2, 10, size, size, 3) and prediction.dtype == torch.float32
    frames = side_by_side(batch.obs, prediction)
    assert frames.shape == (10, 2 * size, 3 * size, 3) and frames.dtype.name == "uint8"
    assert (frames[:, :size, :size] == batch.obs[0].numpy()).all()  # the truth panel
    changed = batch.obs.clone()
    changed[:, 4:] = 255 - changed[:, 4:]  # observations after the context
    again = open_loop_prediction(
        model,
        replace(batch, obs=changed.clone()),
        4,
    )
    assert torch.equal(again, prediction)
    changed[:, :4] = 255 - changed[:, :4]  # observations inside the context
    moved = open_loop_prediction(
        model,
        replace(batch, obs=changed.clone()),
        4,
    )
    assert not torch.allclose(moved[:, 4:], prediction[:, 4:])
