"""Replayed training batches of one level and of the whole hierarchy, and their timing diagram.

Row t of a level's replay is the record that level stores when it acts for the t-th time
(ALGORITHM.md §1 "row t", §5.11): the observation o_t, the reward r_t received on arriving at
o_t, the flags of o_t, the action a_t chosen after seeing o_t, and the subgoal in force when a_t
was chosen. Steps of one environment are stored in time order and episodes are not separated, so
a sequence may cross an episode boundary; an ``is_first`` row inside it resets the model.

Level 0 (acts every env step; E = 1 shown; ``·`` = 0). Gymnasium's NEXT_STEP autoreset: the step
after a done step ignores the action and returns the next episode's first obs with reward 0::

    env step      0     1     2     3   …    37    38    39    40
    obs           o0    o1    o2    o3       o37   o38   o'0   o'1
    reward        ·     r1    r2    r3       r37   r38   ·     r'1   arrived at o_t (D5: r38 kept)
    is_first      1     ·     ·     ·        ·     ·     1     ·
    is_last       ·     ·     ·     ·        ·     1     ·     ·     (is_terminal ⊆ is_last; D15)
    action        a0    a1    a2    a3       a37   0     a'0   a'1   chosen at o_t; 0 on is_last
    subgoal_code  c0    c0    c0    c0       c9    c9    c'0   c'0   level 1's code in force

World-model input at position t (D1): the action that LEADS to o_t is a_{t-1} from row t-1,
zero where ``is_first[t]`` and at t = 0 of a sample (row 0's ``is_first`` is forced True).
``compat.action_alignment_original`` feeds row t's own a_t instead::

    position t        0             1          2          …   39 (is_first)   40
    dynamics input    (z_init, 0)   (z0, a0)   (z1, a1)       (z_init, 0)     (z'0, a'0)  → z_t
    reward target     r0        r1        r2           r39 = 0         r'1
    continue target   1 - is_terminal[t]

Level i ≥ 1 acts every Kⁱ env steps counted from each episode's first step, plus a closing step
on an ``is_last`` step that is off its grid (ALGORITHM.md §5.2, D9 default). With K = 4, L = 3
and the episode above (is_first at 0, is_last at 38)::

    env step      0    1  2  3   4    …   16   …   32   …   36   37   38   39(first)
    level 0 row   0    1  2  3   4        16       32       36   37   38   39
    level 1 row   0              1         4        8        9         10   11
    level 2 row   0                        1        2                  3    4
    flags         row takes the flags of the env step where it is stored: exactly one is_first
                  and one is_last row per episode at every level

How K rows of level i become one row of level i+1 (``hierarchy.stack_lower_latents``):

    obs       level i+1 keeps a FIFO of the last K latents level i passed upward, one per step
              of level i, and stores their concatenation, oldest first: {stoch [K·S·Z],
              symlog(deter) [K·h]}. With ``hierarchy.upward_latent_lag`` (default) the latent
              passed at a step is level i's posterior from its PREVIOUS step, so level 1's row at
              env step 4 observes the level-0 posteriors of o0, o1, o2, o3. At ``is_first`` the
              FIFO is refilled with K copies of the first latent of the new episode.
    reward    mean env reward per step: every env step adds r_env / Kⁱ to level i's accumulator,
              and the row stores and resets it, so level 1's row at env step 4 holds
              (r1 + r2 + r3 + r4) / 4 and its closing row at 38 holds (r37 + r38) / 4 (§5.5).
    action    level i+1's action is a one-hot subgoal code [G·V]; it is stored as level i's
              ``subgoal_code`` on the K rows (fewer before a closing step) it is in force for,
              and level i stores its own decoded ``subgoal`` g̃ = dec_i(code) [Dg] on those rows.
              The top level stores an all-zero code and Dg = 0 or zeros.

Training (ALGORITHM.md §5.2): training call c includes level i iff c mod Kⁱ = 0 and level i's
replay holds at least B sequences (:class:`HierarchyBatch`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class Batch:
    """One level's training batch of B sequences of T consecutive rows (see the module diagram).

    Shapes: obs [B, T, Himg, Wimg, C] uint8 or [B, T, O] float32; action [B, T, A] float32;
    reward [B, T] float32; is_first, is_last, is_terminal [B, T] bool (``is_first[:, 0]`` is
    always True); subgoal [B, T, Dg] float32; subgoal_code [B, T, Gc] float32 (Dg, Gc may be 0).
    """

    obs: Tensor
    action: Tensor
    reward: Tensor
    is_first: Tensor
    is_last: Tensor
    is_terminal: Tensor
    subgoal: Tensor
    subgoal_code: Tensor

    @property
    def shape(self) -> tuple[int, int]:
        """(B, T)."""
        B, T = self.reward.shape
        return B, T

    def to(self, device: torch.device | str) -> Batch:
        """Copy every tensor to ``device`` (non-blocking where the source is pinned)."""
        moved = {f.name: getattr(self, f.name).to(device, non_blocking=True) for f in fields(self)}
        return Batch(**moved)

    def check(self) -> None:
        """Assert the shape and dtype contract of the class docstring."""
        B, T = self.shape
        for f in fields(self):
            tensor = getattr(self, f.name)
            assert tuple(tensor.shape[:2]) == (B, T), f"{f.name} {tuple(tensor.shape)}"
        assert self.obs.dtype in (torch.uint8, torch.float32), f"obs {self.obs.dtype}"
        for name in ("action", "reward", "subgoal", "subgoal_code"):
            assert getattr(self, name).dtype == torch.float32, f"{name} {getattr(self, name).dtype}"
        for name in ("is_first", "is_last", "is_terminal"):
            assert getattr(self, name).dtype == torch.bool, f"{name} {getattr(self, name).dtype}"
        assert bool(self.is_first[:, 0].all()), "is_first[:, 0] must be True"


@dataclass
class HierarchyBatch:
    """Batches of one training call: ``levels[i]`` is present iff level i trains on this call.

    ``call_index`` counts training calls from 0 (including calls on which no level above 0 was
    ready); level i is present iff ``call_index % K**i == 0`` and its replay is ready.
    """

    call_index: int
    levels: list[Batch | None]

    def to(self, device: torch.device | str) -> HierarchyBatch:
        """Copy every present level's batch to ``device``."""
        levels = [None if batch is None else batch.to(device) for batch in self.levels]
        return HierarchyBatch(self.call_index, levels)
