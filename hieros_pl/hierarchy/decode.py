"""Decoded subgoals as level-0 images, as in the paper's figures (ALGORITHM.md §5.3-5.4).

A level i below the top holds a decoded goal g̃ in its own symlog(h) space (``LevelRecord.subgoal``,
the replay's ``subgoal`` column; :func:`goal_from_code` makes one from the code the level above
sent). :func:`subgoal_images` turns it into images:

- level 0: h = symexp(g̃); z = the mode of level 0's prior at h (the prior MLP, as for the learned
  initial state); the level-0 decoder renders feat = [z, h]: one image.
- level 1: the same through level 1's world model gives level 1's predicted observation, the
  stacked latents of the last K level-0 steps [K × (flat(z⁰), symlog(h⁰))]; each is rendered
  like a level-0 goal from its h⁰ = symexp(symlog(h⁰)) (z⁰ again the prior mode at h⁰; the
  decoded flat(z⁰) is not used), giving K images, oldest first (one without
  ``stack_lower_latents``). Higher levels recurse the same way.
- with ``hierarchy.shared_world_model`` every goal already lives in level 0's space: one image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hieros_pl.hierarchy.hierarchy import Hierarchy
from hieros_pl.nn.symlog import symexp
from hieros_pl.world_models.world_model import WorldModel


@torch.no_grad()
def subgoal_images(hierarchy: Hierarchy, level: int, goal: Tensor) -> Tensor:
    """Level-0 images of the goal g̃ that level ``level`` holds.

    Returns uint8 [..., Himg, Wimg, C] at level 0 and with a shared world model; above, one
    more dim per level of descent holding the stacked lower latents, oldest first:
    [..., K, Himg, Wimg, C] at level 1 (K = hierarchy.stride, 1 without stacking).
    """
    # goal: [..., h] float32 (in level's symlog(h) space) -> uint8 [..., (frames,) Himg, Wimg, C]
    levels = hierarchy.levels
    if not 0 <= level < len(levels) - 1:
        raise ValueError(
            f"level {level} holds no subgoal: levels 0..{len(levels) - 2} of this "
            f"{len(levels)}-level hierarchy receive one"
        )
    subactor = levels[level]
    deter_dim = subactor.world_model.cfg.deter
    assert goal.shape[-1] == deter_dim, f"goal {tuple(goal.shape)}, want [..., {deter_dim}]"
    if not subactor.owns_world_model:
        level = 0
    observation = _render(levels[level].world_model, symexp(goal))
    for below in reversed(range(level)):
        observation = _render(levels[below].world_model, _split_latents(hierarchy, observation))
    return _to_uint8(observation)


def observation_images(hierarchy: Hierarchy, level: int, observation: Tensor) -> Tensor:
    """Level-0 images of what level ``level`` ≥ 1 observed: its stacked lower latents, rendered
    down the levels exactly as ``subgoal_images`` renders a goal (so the two compare).

    Returns uint8 [..., K, Himg, Wimg, C] at level 1, one more K dim per level above.
    """
    # observation: [..., Kf * (S*Z + h)] float32 (level's replay obs) -> uint8 images
    if not 1 <= level < len(hierarchy.levels):
        raise ValueError(f"level {level} observes env frames or does not exist")
    rendered = observation
    with torch.no_grad():
        for below in reversed(range(level)):
            world_model = hierarchy.levels[below].world_model
            rendered = _render(world_model, _split_latents(hierarchy, rendered))
    return _to_uint8(rendered)


def goal_from_code(hierarchy: Hierarchy, level: int, code: Tensor) -> Tensor:
    """g̃ of level ``level`` for a code [..., G·V] sent by the level above (its autoencoder)."""
    # code: [..., Gc] float32 -> [..., h] float32
    with torch.no_grad():
        return hierarchy.levels[level].decode_goal(code)


def _render(world_model: WorldModel, deter: Tensor) -> Tensor:
    """The world model's predicted observation at h = ``deter`` with z = its prior mode there."""
    # deter: [..., h] float32 -> [..., *obs_shape] float32 (images in [0, 1])
    stoch, _ = world_model.dynamics.prior_mode(deter)
    return world_model.decode(torch.cat([stoch.flatten(-2), deter], dim=-1))


def _split_latents(hierarchy: Hierarchy, observation: Tensor) -> Tensor:
    """A higher level's decoded observation → the h of each stacked lower latent.

    Only h is returned: the lower level re-derives z as its prior mode, like any goal.
    """
    # observation: [..., Kf * (S*Z + h)] float32 -> deter: [..., Kf, h] float32
    latent_dim = hierarchy.latent_dim
    stacked = observation.unflatten(-1, (-1, latent_dim))
    deter_dim = hierarchy.levels[0].world_model.cfg.deter
    return symexp(stacked[..., latent_dim - deter_dim :])


def _to_uint8(images: Tensor) -> Tensor:
    # images: [..., Himg, Wimg, C] float32 in [0, 1] -> uint8
    return (images * 255.0).round().clamp(0, 255).to(torch.uint8)
