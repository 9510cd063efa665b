"""The stack of subactors and how it acts: timing, stacked lower latents, subgoals, replay rows.

Acting order per env step (ALGORITHM.md §5.2-5.5, §12 D5/D9/D10), for each environment:

    episode start      -> every level re-initialises (learned initial state, zero action,
                          empty FIFO)
    reward             -> level i adds r_env / K**i to its accumulator
    due levels         -> level i acts at episode steps 0, K**i, 2 K**i, ... and closes on is_last
    bottom-up observe  -> due level i pushes its latent into level i+1's FIFO (the stored one under
                          the one-step lag, the fresh posterior without it) and updates its
                          posterior
    top-down decide    -> due level i samples its action; above level 0 that action is the subgoal
                          code of level i-1; every due level emits one replay row, then clears its
                          reward accumulator

Levels compute for all environments and keep results only where due (masks differ per env).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from hieros_pl.behavior.actor import GroupedCategorical
from hieros_pl.config import Config
from hieros_pl.hierarchy.rewards import level_reward_weights
from hieros_pl.hierarchy.subactor import LevelSpec, Subactor
from hieros_pl.nn.distributions import OneHotCategorical
from hieros_pl.nn.symlog import symlog
from hieros_pl.world_models.latent import LatentState

ACT_MODES = ("train", "sample", "greedy")


@dataclass
class LevelCarry:
    """Runtime state of one level for E environments."""

    latent: LatentState
    """Posterior of this level's last acting step, [E, ...]."""
    prev_action: Tensor
    """[E, A] action chosen at this level's last acting step."""
    goal_code: Tensor
    """[E, Gc] subgoal code received from the level above (width 0 at the top)."""
    goal: Tensor
    """[E, h] g̃: goal_code decoded when it was handed down (width 0 at the top); the code
    changes only when the level above acts, so it is decoded then, not on every step."""
    reward_sum: Tensor
    """[E] float32 accumulated r_env / K**i since this level last acted."""
    fifo: Tensor
    """[E, Kf, S*Z + h] float32 latents received from the level below (width 0 at level 0)."""
    fifo_empty: Tensor
    """[E] bool: the next received latent fills the whole FIFO."""


@dataclass
class ActCarry:
    """Runtime state of the whole hierarchy, carried in and out of :meth:`Hierarchy.act`."""

    levels: list[LevelCarry]
    episode_step: Tensor
    """[E] long: env steps since the current episode started."""
    acting_step: int
    """Global acting counter (the grid of compat.higher_level_episodes_original)."""


@dataclass
class LevelRecord:
    """One replay row per environment for one level; ``mask`` says which environments store it."""

    mask: Tensor  # [E] bool
    obs: Tensor  # [E, *obs_shape]
    action: Tensor  # [E, A] float32
    reward: Tensor  # [E] float32
    is_first: Tensor  # [E] bool
    is_last: Tensor  # [E] bool
    is_terminal: Tensor  # [E] bool
    subgoal: Tensor  # [E, h or 0] float32
    subgoal_code: Tensor  # [E, Gc] float32
    action_probs: Tensor | None = None
    """[E, A] float32: the categorical the action came from (one-hot actors; None otherwise).
    Not stored in replay: evaluation reads it (``hieros_pl.policy_stats``)."""


def build_level_specs(
    cfg: Config, obs_shape: tuple[int, ...], obs_is_image: bool, action_dim: int, discrete: bool
) -> list[LevelSpec]:
    """What each level observes and outputs, from the env and the hierarchy config."""
    levels = cfg.hierarchy.levels
    code_dim = cfg.hierarchy.subgoal_groups * cfg.hierarchy.subgoal_classes
    fifo_len = cfg.hierarchy.stride if cfg.hierarchy.stack_lower_latents else 1
    latent_dim = cfg.world_model.stoch * cfg.world_model.classes + cfg.world_model.deter
    specs = []
    for level in range(levels):
        weights = level_reward_weights(level, levels, cfg.reward)
        receives_goal = level < levels - 1
        specs.append(
            LevelSpec(
                level=level,
                obs_shape=obs_shape if level == 0 else (fifo_len * latent_dim,),
                obs_is_image=obs_is_image if level == 0 else False,
                action_dim=action_dim if level == 0 else code_dim,
                action_kind=("onehot" if discrete else "normal") if level == 0 else "grouped",
                goal_code_dim=code_dim if receives_goal else 0,
                reward_weights=weights,
                has_autoencoder=receives_goal or "novelty" in weights,
            )
        )
    return specs


class Hierarchy(nn.Module):
    """All levels, built at start (static shapes); level i is switched on by the module."""

    def __init__(self, cfg: Config, specs: list[LevelSpec]) -> None:
        super().__init__()
        self.stride = cfg.hierarchy.stride
        self.fifo_len = cfg.hierarchy.stride if cfg.hierarchy.stack_lower_latents else 1
        self.upward_latent_lag = cfg.hierarchy.upward_latent_lag
        self.compat = cfg.compat
        subactors: list[Subactor] = []
        for spec in specs:
            shared = cfg.hierarchy.shared_world_model and spec.level > 0
            subactors.append(
                Subactor(
                    spec,
                    cfg.world_model,
                    cfg.behavior,
                    cfg.hierarchy,
                    cfg.compat,
                    subgoal_symlog=cfg.reward.subgoal_symlog,
                    novelty_symlog=cfg.reward.novelty_symlog,
                    shared_world_model=subactors[0].world_model if shared else None,
                )
            )
        self.subactors = nn.ModuleList(subactors)
        self.latent_dim = cfg.world_model.stoch * cfg.world_model.classes + cfg.world_model.deter

    @property
    def levels(self) -> list[Subactor]:
        return list(self.subactors)  # type: ignore[arg-type]

    def level_strides(self) -> list[int]:
        """K**i: env steps (and training calls) per step of level i."""
        return [self.stride**i for i in range(len(self.subactors))]

    # ------------------------------------------------------------------------------------------
    # carry

    def initial_carry(self, num_envs: int, device: torch.device) -> ActCarry:
        """Fresh runtime state: every level at its learned initial state with empty FIFOs."""
        levels = []
        for index, subactor in enumerate(self.levels):
            spec = subactor.spec
            fifo_width = self.latent_dim if index > 0 else 0
            levels.append(
                LevelCarry(
                    latent=subactor.world_model.initial(num_envs, device),
                    prev_action=torch.zeros(num_envs, spec.action_dim, device=device),
                    goal_code=torch.zeros(num_envs, spec.goal_code_dim, device=device),
                    goal=self._decoded_zero_goal(subactor, num_envs, device),
                    reward_sum=torch.zeros(num_envs, device=device),
                    fifo=torch.zeros(num_envs, self.fifo_len, fifo_width, device=device),
                    fifo_empty=torch.ones(num_envs, dtype=torch.bool, device=device),
                )
            )
        episode_step = torch.zeros(num_envs, dtype=torch.long, device=device)
        return ActCarry(levels=levels, episode_step=episode_step, acting_step=0)

    @torch.no_grad()
    def _decoded_zero_goal(self, subactor: Subactor, num_envs: int, device: torch.device) -> Tensor:
        """g̃ of the all-zero code a level holds before the level above first acts."""
        # -> [E, h] float32, or [E, 0] at the top level
        code = torch.zeros(num_envs, subactor.spec.goal_code_dim, device=device)
        return self._decode(subactor, code)

    def _decode(self, subactor: Subactor, code: Tensor) -> Tensor:
        """g̃ for a code: the level's subgoal decoder, or width 0 at the top level."""
        # code: [E, Gc] -> [E, h] | [E, 0]
        if subactor.spec.goal_code_dim == 0:
            return code[:, :0]
        return subactor.decode_goal(code)

    # ------------------------------------------------------------------------------------------
    # acting

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        reward: Tensor,
        is_first: Tensor,
        is_last: Tensor,
        is_terminal: Tensor,
        carry: ActCarry,
        mode: str,
        active_levels: int,
    ) -> tuple[Tensor, ActCarry, list[LevelRecord | None]]:
        """Choose the env action for o_t and the replay row of every due level.

        ``mode``: train (sample, emit rows), sample (sample, no rows), greedy (mode, no rows).
        Returns the level-0 action [E, A], the new carry, and per level a LevelRecord, or None
        where no env acts at that level on this step (its actor does not run then).
        """
        # obs: [E, *obs_shape]   reward: [E] float32   is_first/is_last/is_terminal: [E] bool
        E = obs.shape[0]
        assert reward.shape == (E,), f"reward {tuple(reward.shape)}"
        assert mode in ACT_MODES, f"mode {mode} not in {ACT_MODES}"
        levels = [replace(level) for level in carry.levels]
        episode_step = carry.episode_step
        if self.compat.higher_level_episodes_original:
            self._zero_at_episode_end(levels, is_last | is_terminal)
        else:
            episode_step = torch.where(is_first, 0, episode_step)
            self._reset_at_episode_start(levels, is_first)
        for index, level in enumerate(levels):
            level.reward_sum = level.reward_sum + reward / self.stride**index
        due = self._due_masks(episode_step, carry.acting_step, is_last, active_levels)
        observations = self._observe_bottom_up(levels, obs, is_first, due)
        records = self._decide_top_down(
            levels, observations, due, is_first, is_last, is_terminal, mode
        )
        if self.compat.higher_level_episodes_original:
            # The original clears every level's accumulator at an episode end, acting or not.
            for level in levels:
                level.reward_sum = torch.where(is_last | is_terminal, 0.0, level.reward_sum)
        new_carry = ActCarry(levels, episode_step + 1, carry.acting_step + 1)
        return levels[0].prev_action, new_carry, records

    def _reset_at_episode_start(self, levels: list[LevelCarry], is_first: Tensor) -> None:
        """At is_first: learned initial state, zero action, no reward, FIFO to be refilled (D9)."""
        if not bool(is_first.any()):
            return
        for subactor, level in zip(self.levels, levels):
            initial = subactor.world_model.initial(is_first.shape[0], is_first.device)
            level.latent = initial.where(is_first, level.latent)
            level.prev_action = torch.where(is_first[:, None], 0.0, level.prev_action)
            level.reward_sum = torch.where(is_first, 0.0, level.reward_sum)
            level.fifo_empty = level.fifo_empty | is_first

    def _zero_at_episode_end(self, levels: list[LevelCarry], episode_end: Tensor) -> None:
        """compat.higher_level_episodes_original: multiply every carried state by 0 (D9 item 2)."""
        if not bool(episode_end.any()):
            return
        for subactor, level in zip(self.levels, levels):
            level.latent = level.latent.map(torch.zeros_like).where(episode_end, level.latent)
            level.prev_action = torch.where(episode_end[:, None], 0.0, level.prev_action)
            level.goal_code = torch.where(episode_end[:, None], 0.0, level.goal_code)
            zero_goal = self._decoded_zero_goal(subactor, episode_end.shape[0], episode_end.device)
            level.goal = torch.where(episode_end[:, None], zero_goal, level.goal)

    def _due_masks(
        self, episode_step: Tensor, acting_step: int, is_last: Tensor, active_levels: int
    ) -> list[Tensor]:
        """[E] bool per level: whether level i acts on this env step."""
        masks = []
        for index in range(len(self.subactors)):
            period = self.stride**index
            if self.compat.higher_level_episodes_original:
                on_grid = torch.full_like(is_last, acting_step % period == 0)
            else:
                on_grid = (episode_step % period == 0) | is_last
            masks.append(on_grid & (index < active_levels))
        return masks

    def _observe_bottom_up(
        self, levels: list[LevelCarry], obs: Tensor, is_first: Tensor, due: list[Tensor]
    ) -> list[Tensor]:
        """Update each due level's posterior; feed latents upward. Returns each level's obs."""
        observations = []
        for index, (subactor, level) in enumerate(zip(self.levels, levels)):
            above = levels[index + 1] if index + 1 < len(levels) else None
            if above is not None and self.upward_latent_lag:
                self._push_upward(above, level.latent, due[index])
            level_obs = obs if index == 0 else level.fifo.flatten(1)
            observations.append(level_obs)
            if bool(due[index].any()) and not subactor.owns_world_model:
                # Shared world model: a higher level's state is level 0's posterior.
                level.latent = levels[0].latent.where(due[index], level.latent)
            elif bool(due[index].any()):
                posterior = subactor.world_model.obs_step(
                    level.latent, level.prev_action, level_obs, is_first
                )
                level.latent = posterior.where(due[index], level.latent)
            if above is not None and not self.upward_latent_lag:
                self._push_upward(above, level.latent, due[index])
        return observations

    def _push_upward(self, above: LevelCarry, latent: LatentState, mask: Tensor) -> None:
        """Append [flat(z), symlog(h)] to the FIFO of the level above where ``mask``."""
        # latent: LatentState [E, ...]   mask: [E] bool
        entry = torch.cat([latent.stoch.flatten(1), symlog(latent.deter)], dim=-1)
        shifted = torch.cat([above.fifo[:, 1:], entry[:, None]], dim=1)
        filled = entry[:, None].expand_as(above.fifo)
        pushed = torch.where(above.fifo_empty[:, None, None], filled, shifted)
        above.fifo = torch.where(mask[:, None, None], pushed, above.fifo)
        above.fifo_empty = above.fifo_empty & ~mask

    def _decide_top_down(
        self,
        levels: list[LevelCarry],
        observations: list[Tensor],
        due: list[Tensor],
        is_first: Tensor,
        is_last: Tensor,
        is_terminal: Tensor,
        mode: str,
    ) -> list[LevelRecord | None]:
        records: list[LevelRecord | None] = [None] * len(levels)
        subactors = self.levels
        for index in reversed(range(len(levels))):
            subactor, level, mask = subactors[index], levels[index], due[index]
            if not bool(mask.any()):
                continue  # no env acts at this level on this step: nothing to decide or store
            goal = level.goal
            action, action_probs = self._choose_action(subactor, level, mode)
            level.prev_action = torch.where(mask[:, None], action, level.prev_action)
            if index > 0:
                below = levels[index - 1]
                # A closing step's output is discarded: the episode ends on this step anyway.
                hands_down = mask & ~is_last
                below.goal_code = torch.where(hands_down[:, None], action, below.goal_code)
                decoded = self._decode(subactors[index - 1], action)
                below.goal = torch.where(hands_down[:, None], decoded, below.goal)
            stored_reward = level.reward_sum
            if self.compat.terminal_reward_original:
                stored_reward = torch.where(is_last | is_terminal, 0.0, stored_reward)
            records[index] = LevelRecord(
                mask=mask & (mode == "train"),
                obs=observations[index],
                action=torch.where(is_last[:, None], 0.0, action),
                reward=stored_reward,
                is_first=is_first,
                is_last=is_last,
                is_terminal=is_terminal,
                subgoal=goal,
                subgoal_code=level.goal_code,
                action_probs=action_probs,
            )
            level.reward_sum = torch.where(mask, 0.0, level.reward_sum)
        return records

    def _choose_action(
        self, subactor: Subactor, level: LevelCarry, mode: str
    ) -> tuple[Tensor, Tensor | None]:
        """(action [E, A], the one-hot actor's probabilities [E, A] or None)."""
        features = subactor.world_model.actor_features(level.latent)
        goal_input = subactor.goal_input(level.goal_code, level.goal)
        dist = subactor.actor_critic.actor(torch.cat([features, goal_input], dim=-1))
        probs = dist.probs if isinstance(dist, OneHotCategorical) else None
        soft = mode == "greedy" and self.compat.eval_subgoal_original
        if soft and isinstance(dist, GroupedCategorical):
            return dist.soft_mode(), None  # D8
        action = dist.sample() if mode != "greedy" else dist.mode()
        if subactor.spec.action_kind == "normal":
            # The env executes clipped actions; replay stores what was executed.
            return action.clamp(-1.0, 1.0), None
        # Straight-through one-hots are 1 ± rounding; replay stores exact one-hots.
        return (action > 0.5).float(), probs
