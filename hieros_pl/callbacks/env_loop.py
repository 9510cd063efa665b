"""Steps the training environments with the module's policy and writes every level's replay.

Environment stepping lives here, in ``on_train_batch_start``, never in the dataset iterator
(Lightning fetches one batch ahead from an unsized iterable; DESIGN.md §4.6). The replay is
prefilled in ``on_fit_start`` until level 0 can be sampled, because Lightning draws the first
batch before ``on_train_start``.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium
import lightning.pytorch as pl
import numpy as np
import torch

from hieros_pl.callbacks.episode_state import episode_state, resume_episode_state
from hieros_pl.data.datamodule import ReplayDataModule
from hieros_pl.envs import EnvSpec, to_env_action
from hieros_pl.hierarchy.hierarchy import ActCarry, LevelRecord
from hieros_pl.module import HierosModule
from hieros_pl.nn.modes import evaluation_mode
from hieros_pl.replay.buffer import Transition

log = logging.getLogger(__name__)


def replay_datamodule(trainer: pl.Trainer) -> ReplayDataModule:
    """The trainer's datamodule, which must be the replay's."""
    datamodule = getattr(trainer, "datamodule", None)
    assert isinstance(datamodule, ReplayDataModule), type(datamodule)
    return datamodule


LAST_STEPS_WINDOW = 10_000
"""DreamerV3 protocol: training episodes ending in the last 10k agent steps of the budget."""


@dataclass
class EnvObservation:
    """What the environments returned for the current step, before the policy acts on it."""

    obs: np.ndarray  # [E, *obs_shape]
    reward: np.ndarray  # [E] float32
    is_first: np.ndarray  # [E] bool
    is_last: np.ndarray  # [E] bool
    is_terminal: np.ndarray  # [E] bool


class EnvLoop(pl.Callback):
    """Keeps the train ratio: ``B·T / train_ratio`` env steps are owed per training call."""

    def __init__(
        self,
        env: gymnasium.vector.VectorEnv,
        spec: EnvSpec,
        seed: int | None,
        budget: int,
        train_ratio: float,
        terminal_flag_original: bool = False,
        policy_exceptions_original: bool = False,
        env_state: bool = False,
        safe_point: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.env_state = env_state
        """Save the env's exact state in checkpoints (envs/state.py); else truncate on resume."""
        self.safe_point = safe_point
        """Called after each prefill step (a pre-emption raises there; the state is consistent)."""
        self._restored: dict[str, Any] | None = None
        self.spec = spec
        self.seed = seed
        self.budget = budget
        self.train_ratio = train_ratio
        self.terminal_flag_original = terminal_flag_original
        self.policy_exceptions_original = policy_exceptions_original
        self.num_envs = env.num_envs
        self.owed_steps = 0.0
        self.resets = 0
        self.policy_exceptions = 0
        self.carry: ActCarry | None = None
        self.current: EnvObservation | None = None
        self.last_env_action: np.ndarray | None = None
        self.finished: list[tuple[int, float, int]] = []
        self.recent_finished: deque[tuple[int, float]] = deque()

    # ------------------------------------------------------------------------------------------
    # Lightning hooks

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        module = self._module(pl_module)
        datamodule = self._datamodule(trainer)
        datamodule.set_call_index(int(module.train_calls))
        restored, self._restored = self._restored, None
        if restored is None or restored.get("current") is None:
            self._reset_envs(module)
        else:
            with evaluation_mode(module):
                self._resume_episodes(module, restored)
        with evaluation_mode(module):
            while not datamodule.buffers[0].ready():
                if int(module.env_steps) >= self.budget:
                    raise ValueError(
                        f"env_steps ({self.budget}) is too small to fill level 0's replay with "
                        "replay.batch_size sequences of replay.batch_length steps"
                    )
                self._env_step(module, datamodule)
                if self.safe_point is not None:
                    self.safe_point()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        module = self._module(pl_module)
        datamodule = self._datamodule(trainer)
        replay = module.cfg.replay
        self.owed_steps += replay.batch_size * replay.batch_length / self.train_ratio
        with evaluation_mode(module):
            while self.owed_steps >= 1.0 and int(module.env_steps) < self.budget:
                self._env_step(module, datamodule)
                self.owed_steps -= 1.0
        if int(module.env_steps) >= self.budget:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        """Counters, and the running episodes: env state, current observation, acting carry."""
        return {
            "owed_steps": self.owed_steps,
            "resets": self.resets,
            "policy_exceptions": self.policy_exceptions,
            "recent_finished": list(self.recent_finished),
            **episode_state(self),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.owed_steps = float(state_dict["owed_steps"])
        self.resets = int(state_dict["resets"])
        self.policy_exceptions = int(state_dict["policy_exceptions"])
        self.recent_finished = deque(tuple(item) for item in state_dict["recent_finished"])
        self._restored = state_dict  # applied in on_fit_start, once the module is on its device

    # ------------------------------------------------------------------------------------------
    # stepping

    def _reset_envs(self, module: HierosModule) -> None:
        """Start fresh episodes (also after a resume: the interrupted episode is closed)."""
        seed = None if self.seed is None else self.seed + 1000 * self.resets
        self.resets += 1
        obs, _ = self.env.reset(seed=seed)
        E = self.num_envs
        self.current = EnvObservation(
            obs=obs,
            reward=np.zeros(E, dtype=np.float32),
            is_first=np.ones(E, dtype=bool),
            is_last=np.zeros(E, dtype=bool),
            is_terminal=np.zeros(E, dtype=bool),
        )
        self.carry = module.hierarchy.initial_carry(E, module.device)

    def _resume_episodes(self, module: HierosModule, state: dict[str, Any]) -> None:
        """Continue the interrupted episodes, or close them as truncated if the env can't.

        Exact: the env's saved state goes back into the (reset once) env, together with the
        current observation, the carry and the last action. Otherwise the saved observation is
        written as the episode's last row (is_last, not terminal) and new episodes start.
        """
        resume_episode_state(self, module, state)
        if state.get("env") is not None and self.env_state:
            return
        assert self.current is not None
        log.info("the env state was not saved: the interrupted episodes end as truncated")
        self.current.is_last = np.ones(self.num_envs, dtype=bool)
        self._policy(module)
        self._reset_envs(module)

    def _env_step(self, module: HierosModule, datamodule: ReplayDataModule) -> None:
        """Policy on o_t, replay rows of every due level, then the env executes a_t."""
        assert self.current is not None and self.carry is not None
        action = self._policy(module)
        env_action = to_env_action(action, self.spec)
        self.last_env_action = env_action
        obs, reward, terminated, truncated, info = self.env.step(env_action)
        module.count_env_steps(self.num_envs)
        previous = self.current
        is_last = np.asarray(terminated) | np.asarray(truncated)
        self.current = EnvObservation(
            obs=obs,
            reward=np.asarray(reward, dtype=np.float32),
            is_first=previous.is_last.copy(),
            is_last=is_last,
            is_terminal=is_last.copy() if self.terminal_flag_original else np.asarray(terminated),
        )
        self._record_episodes(info, int(module.env_steps))

    def _policy(self, module: HierosModule) -> np.ndarray:
        """Level-0 action [E, A] for the current observation; writes every level's replay row."""
        assert self.current is not None and self.carry is not None
        device = module.device
        current = self.current
        obs, reward, is_first, is_last, is_terminal = (
            torch.as_tensor(value, device=device)
            for value in (
                current.obs,
                current.reward,
                current.is_first,
                current.is_last,
                current.is_terminal,
            )
        )
        try:
            action, self.carry, records = module.act(
                obs, reward, is_first, is_last, is_terminal, self.carry, "train"
            )
        except Exception:
            if not self.policy_exceptions_original or self.last_env_action is None:
                raise
            # compat.policy_exceptions_original (D13): count, log, repeat the previous action.
            self.policy_exceptions += 1
            log.error("exception in the policy (counted):\n%s", traceback.format_exc())
            return self._previous_action_one_hot()
        for level, record in enumerate(records):
            if record is not None:
                self._write(module, level, record)
        return action.float().cpu().numpy()

    def _previous_action_one_hot(self) -> np.ndarray:
        assert self.last_env_action is not None
        if not self.spec.discrete:
            return np.asarray(self.last_env_action, dtype=np.float32)
        return np.eye(self.spec.action_dim, dtype=np.float32)[self.last_env_action]

    def _write(self, module: HierosModule, level: int, record: LevelRecord) -> None:
        mask = record.mask.cpu().numpy()
        if not mask.any():
            return
        transition = Transition(
            obs=record.obs.cpu().numpy(),
            action=record.action.float().cpu().numpy(),
            reward=record.reward.float().cpu().numpy(),
            is_first=record.is_first.cpu().numpy(),
            is_last=record.is_last.cpu().numpy(),
            is_terminal=record.is_terminal.cpu().numpy(),
            subgoal=record.subgoal.float().cpu().numpy(),
            subgoal_code=record.subgoal_code.float().cpu().numpy(),
        )
        datamodule = self._datamodule(module.trainer)
        datamodule.buffers[level].add(transition, env_mask=mask)

    # ------------------------------------------------------------------------------------------
    # episodes

    def _record_episodes(self, info: dict[str, Any], env_steps: int) -> None:
        """Episodes that ended on this step, from gymnasium's RecordEpisodeStatistics."""
        for index in np.flatnonzero(info.get("_episode", ())):
            episode = (
                env_steps,
                float(info["episode"]["r"][index]),
                int(info["episode"]["l"][index]),
            )
            self.finished.append(episode)
            self.recent_finished.append(episode[:2])
        while self.recent_finished and self.recent_finished[0][0] <= env_steps - LAST_STEPS_WINDOW:
            self.recent_finished.popleft()

    def pop_finished_episodes(self) -> list[tuple[int, float, int]]:
        """(env step at the end, return, length) of every episode finished since the last call."""
        finished, self.finished = self.finished, []
        return finished

    def last_window_score(self) -> float | None:
        """DreamerV3 protocol: mean return of training episodes ending in the last 10k steps."""
        if not self.recent_finished:
            return None
        return float(np.mean([episode_return for _, episode_return in self.recent_finished]))

    # ------------------------------------------------------------------------------------------

    @staticmethod
    def _module(pl_module: pl.LightningModule) -> HierosModule:
        assert isinstance(pl_module, HierosModule), type(pl_module)
        return pl_module

    @staticmethod
    def _datamodule(trainer: pl.Trainer) -> ReplayDataModule:
        return replay_datamodule(trainer)
