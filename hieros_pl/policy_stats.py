"""What the level-0 policy looked like while it played evaluation episodes (discrete actions).

A greedy policy (argmax) and a sampled one can score very differently when the actor stays
wide: the argmax of a broad distribution is a different, near-deterministic policy that repeats
one action for long stretches. ``hieros-eval --policy-stats`` reports the numbers that show it:
how wide the actor is (entropy as a fraction of log A, probability of its top action), how
often the executed action changes from one step to the next within an episode, the longest run
of one action, and how often each action was executed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PolicyStats:
    """Accumulates per-step statistics of E envs' action distributions over A actions."""

    action_dim: int
    num_envs: int
    counts: np.ndarray = field(init=False)  # [A] int64: executed actions
    entropy_fractions: list[np.ndarray] = field(default_factory=list)  # each [n] float64
    top_probabilities: list[np.ndarray] = field(default_factory=list)  # each [n] float64
    steps: int = 0
    repeats: int = 0  # steps whose action equals the same env's previous one in the episode
    comparable: int = 0  # steps that have a previous step in the same episode
    longest_run: int = 0
    previous: np.ndarray = field(init=False)  # [E] int64, -1 before an episode's first step
    run_length: np.ndarray = field(init=False)  # [E] int64

    def __post_init__(self) -> None:
        if self.action_dim < 2:
            raise ValueError(f"policy statistics need at least 2 actions, got {self.action_dim}")
        self.counts = np.zeros(self.action_dim, dtype=np.int64)
        self.previous = np.full(self.num_envs, -1, dtype=np.int64)
        self.run_length = np.zeros(self.num_envs, dtype=np.int64)

    def update(
        self, probs: np.ndarray, actions: np.ndarray, is_first: np.ndarray, counted: np.ndarray
    ) -> None:
        """One env step: the distributions, the executed actions and which envs count.

        ``is_first`` starts a new episode (its action has no predecessor); ``counted`` is False
        for envs that already played their quota of episodes.
        """
        # probs: [E, A] float   actions: [E] int   is_first, counted: [E] bool
        E, A = probs.shape
        if (self.num_envs, self.action_dim) != (E, A):
            raise ValueError(
                f"probs {probs.shape} do not match {self.num_envs} envs x {self.action_dim} actions"
            )
        self.previous = np.where(is_first, -1, self.previous)
        self.run_length = np.where(is_first, 0, self.run_length)
        same = actions == self.previous
        self.run_length = np.where(same, self.run_length + 1, 1)
        entropy = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(-1) / np.log(A)
        self.entropy_fractions.append(entropy[counted].astype(np.float64))
        self.top_probabilities.append(probs.max(-1)[counted].astype(np.float64))
        self.counts += np.bincount(actions[counted], minlength=A)
        self.steps += int(counted.sum())
        self.repeats += int((same & counted).sum())
        self.comparable += int(((self.previous >= 0) & counted).sum())
        if counted.any():
            self.longest_run = max(self.longest_run, int(self.run_length[counted].max()))
        self.previous = actions.astype(np.int64)

    def summary(self) -> dict[str, Any]:
        """The statistics as JSON-ready numbers (NaN-free only once a step was counted)."""
        if self.steps == 0:
            raise ValueError("no counted step: policy statistics are empty")
        entropy = np.concatenate(self.entropy_fractions)
        top = np.concatenate(self.top_probabilities)
        return {
            "steps": self.steps,
            "entropy_fraction_mean": float(entropy.mean()),
            "top_probability_mean": float(top.mean()),
            "top_probability_median": float(np.median(top)),
            "action_change_rate": 1.0 - self.repeats / max(self.comparable, 1),
            "longest_run_of_one_action": self.longest_run,
            "action_frequencies": (self.counts / self.steps).round(4).tolist(),
        }
