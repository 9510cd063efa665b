"""Per-level diagnostics of the subgoals chosen and pursued while acting (README, Logged metrics).

While the agent acts in training mode, :class:`SubgoalDiagnostics` keeps, for every level and
every acting row, what acting already computed: the code the level chose (levels ≥ 1), its
posterior h and the decoded goal g̃ it pursues (levels below the top), and the reward it stores.
Nothing is evaluated on the acting path beyond keeping references; :meth:`compute` turns the
window since the previous log line into metrics in one batch:

    level{i}/subgoal/code_entropy   entropy (nats) of the empirical code distribution per group,
                                    averaged over the G groups (levels ≥ 1)
    level{i}/subgoal/codes_used     distinct full codes chosen (levels ≥ 1)
    level{i}/subgoal/cosine         mean cos(symlog(h_t), g̃_t) (levels below the top)
    level{i}/subgoal/reach_rate     fraction of rows with that cosine ≥ the reach threshold
    level{i}/subgoal/cosine_baseline  mean cos(symlog(h_u), g̃_t) with u the row half a window
                                    away (another env or an earlier step): the level shared by
                                    unrelated states, against which the cosine is read
    level{i}/reward/{term}          the level's reward components on the real states it acted on
    hierarchy/active_levels         levels switched on
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from hieros_pl.hierarchy.hierarchy import ActCarry
from hieros_pl.hierarchy.rewards import novelty_reward, subgoal_reward
from hieros_pl.nn.symlog import symlog

MAX_STEPS = 4096
"""Acting steps kept per level when no one reads the window (e.g. a benchmark loop)."""


@dataclass
class LevelRows:
    """The acting rows of one level at one env step (or a window of them, concatenated)."""

    mask: Tensor  # [n] bool: the env stored a row at this level (acted in training mode)
    code: Tensor  # [n, Gc] float32 one-hot code this level chose (width 0 at level 0)
    hands_down: Tensor  # [n] bool: the code was handed down (not a closing step)
    deter: Tensor  # [n, h] float32 posterior h after this step's observation
    goal: Tensor  # [n, h or 0] float32 g̃ pursued (width 0 at the top level)
    reward: Tensor  # [n] float32 extrinsic reward stored in the row

    def tensors(self) -> list[Tensor]:
        """The fields in declaration order."""
        return [getattr(self, field.name) for field in fields(self)]

    def selected(self) -> LevelRows:
        """Only the rows of envs that stored one."""
        return LevelRows(*(tensor[self.mask] for tensor in self.tensors()))


def code_entropy(codes: Tensor, groups: int, classes: int) -> Tensor:
    """Entropy (nats) of the empirical distribution of each group's class, averaged over groups."""
    # codes: [N, G*V] float32 one-hot per group -> [] float32
    counts = codes.reshape(-1, groups, classes).sum(0)  # [G, V]
    probs = counts / counts.sum(-1, keepdim=True)
    entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)
    return entropy.mean()


def codes_used(codes: Tensor) -> int:
    """Number of distinct full codes among the rows."""
    # codes: [N, G*V] float32 -> int
    return int(torch.unique(codes, dim=0).shape[0])


def goal_cosine(deter: Tensor, goal: Tensor) -> Tensor:
    """cos(symlog(h), g̃) per row."""
    # deter: [N, h] float32   goal: [N, h] float32 -> [N] float32
    return torch.nn.functional.cosine_similarity(symlog(deter), goal, dim=-1, eps=1e-12)


def goal_and_baseline_cosines(deter: Tensor, goal: Tensor) -> tuple[Tensor, Tensor]:
    """Per row: cos(symlog(h_t), g̃_t) and cos(symlog(h_u), g̃_t) with u = t + N/2 mod N."""
    # deter: [N, h] float32   goal: [N, h] float32 -> cosine, baseline: [N] float32
    unrelated = torch.roll(deter, shifts=deter.shape[0] // 2, dims=0)
    return goal_cosine(deter, goal), goal_cosine(unrelated, goal)


def reach_statistics(deter: Tensor, goal: Tensor, threshold: float) -> dict[str, Tensor]:
    """Cosine, reach rate and unrelated-state baseline of a window of (h, g̃) rows."""
    # deter: [N, h] float32   goal: [N, h] float32 -> each [] float32
    cosine, baseline = goal_and_baseline_cosines(deter, goal)
    return {
        "cosine": cosine.mean(),
        "reach_rate": (cosine >= threshold).float().mean(),
        "cosine_baseline": baseline.mean(),
    }


class SubgoalDiagnostics:
    """Collects acting rows per level and turns a window of them into metrics."""

    def __init__(self, levels: int, groups: int, classes: int, reach_threshold: float) -> None:
        self.levels, self.groups, self.classes = levels, groups, classes
        self.reach_threshold = reach_threshold
        self.rows: list[deque[LevelRows]] = [deque(maxlen=MAX_STEPS) for _ in range(levels)]

    def add(self, level: int, rows: LevelRows) -> None:
        """Keep one env step's rows of ``level`` (references only; evaluated in compute)."""
        self.rows[level].append(rows)

    def update(self, records: list, carry: ActCarry) -> None:
        """Keep the rows of every level that acted, from Hierarchy.act's records and carry."""
        for level, record in enumerate(records):
            if record is None:
                continue
            code = record.action if level > 0 else record.action[:, :0]
            rows = LevelRows(
                record.mask,
                code,
                ~record.is_last,
                carry.levels[level].latent.deter,
                record.subgoal,
                record.reward,
            )
            self.add(level, rows)

    def reset(self) -> None:
        for rows in self.rows:
            rows.clear()

    @torch.no_grad()
    def compute(self, subactors: list, active_levels: int) -> dict[str, float]:
        """Metrics of the window since the last reset (levels without rows are left out).

        ``subactors``: the hierarchy's levels, for their reward weights and autoencoders.
        """
        metrics = {"hierarchy/active_levels": float(active_levels)}
        top = self.levels - 1
        for level, window in enumerate(self.rows):
            if not window:
                continue
            columns = zip(*(step.tensors() for step in window))
            rows = LevelRows(*(torch.cat(parts) for parts in columns)).selected()
            if rows.mask.shape[0] == 0:
                continue
            prefix = f"level{level}"
            if level > 0:
                chosen = rows.code[rows.hands_down]
                if chosen.shape[0] > 0:
                    entropy = code_entropy(chosen, self.groups, self.classes)
                    metrics[f"{prefix}/subgoal/code_entropy"] = float(entropy)
                    metrics[f"{prefix}/subgoal/codes_used"] = float(codes_used(chosen))
            if level < top:
                stats = reach_statistics(rows.deter, rows.goal, self.reach_threshold)
                metrics.update({f"{prefix}/subgoal/{k}": float(v) for k, v in stats.items()})
            rewards = self._rewards(subactors[level], rows)
            metrics.update({f"{prefix}/reward/{k}": float(v) for k, v in rewards.items()})
        return metrics

    @staticmethod
    def _rewards(subactor, rows: LevelRows) -> dict[str, Tensor]:
        """Mean of each of the level's reward components on the real states it acted on."""
        terms = subactor.spec.reward_weights
        rewards: dict[str, Tensor] = {}
        if "extrinsic" in terms:
            rewards["extrinsic"] = rows.reward.mean()
        if "subgoal" in terms:
            rewards["subgoal"] = subgoal_reward(
                rows.deter, rows.goal, subactor.subgoal_symlog
            ).mean()
        if "novelty" in terms:
            novelty = novelty_reward(
                rows.deter,
                subactor.autoencoder,
                subactor.novelty_symlog,
                subactor.compat.novelty_space_original,
            )
            rewards["novelty"] = novelty.mean()
        return rewards
