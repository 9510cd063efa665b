"""HierosModule: the whole hierarchy as a LightningModule with one optimiser per (level, part)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from hieros_pl import __version__
from hieros_pl.config import Config, OptimizerConfig
from hieros_pl.data.batch import Batch, HierarchyBatch
from hieros_pl.hierarchy.diagnostics import SubgoalDiagnostics
from hieros_pl.hierarchy.hierarchy import ActCarry, Hierarchy, LevelRecord, build_level_specs
from hieros_pl.hierarchy.shared import shared_behavior_losses
from hieros_pl.nn.modes import evaluation_mode
from hieros_pl.rng_state import capture_rng_states, restore_rng_states
from hieros_pl.world_models.latent import LatentState
from hieros_pl.world_models.world_model import weighted_total

ORIGINAL_WEIGHT_DECAY = 0.01  # PyTorch's AdamW default, silently active in the original (D11)


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the level and the loss term."""


def clip_by_global_norm(optimizer: torch.optim.Optimizer, max_norm: float) -> Tensor:
    """Clip the gradients of an optimiser's parameters to a global norm; returns the norm before."""
    with_grads = [
        p for group in optimizer.param_groups for p in group["params"] if p.grad is not None
    ]
    return torch.nn.utils.clip_grad_norm_(with_grads, max_norm)


class HierosModule(pl.LightningModule):
    """Manual optimisation of every level; counters of its own (DESIGN.md §4.4).

    Counters (registered buffers, so checkpoints carry them): ``env_steps`` (agent steps),
    ``env_frames`` (emulator frames), ``train_calls`` and ``updates`` (one entry per level).
    Lightning's ``global_step`` counts optimiser steps and is never used for budgets.
    """

    env_steps: Tensor
    env_frames: Tensor
    train_calls: Tensor
    updates: Tensor
    first_train_env_step: Tensor

    def __init__(
        self,
        cfg: Config,
        obs_shape: tuple[int, ...],
        obs_is_image: bool,
        action_dim: int,
        discrete: bool,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.cfg = cfg
        self.specs = build_level_specs(cfg, obs_shape, obs_is_image, action_dim, discrete)
        self.hierarchy = Hierarchy(cfg, self.specs)
        self.register_buffer("env_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("env_frames", torch.zeros((), dtype=torch.long))
        self.register_buffer("train_calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("updates", torch.zeros(cfg.hierarchy.levels, dtype=torch.long))
        self.register_buffer("first_train_env_step", torch.full((), -1, dtype=torch.long))
        self.optimizer_names = self._optimizer_names()
        self.pending_metrics: dict[str, list[Tensor]] = {}
        hierarchy_cfg = cfg.hierarchy
        self.diagnostics = SubgoalDiagnostics(
            hierarchy_cfg.levels,
            hierarchy_cfg.subgoal_groups,
            hierarchy_cfg.subgoal_classes,
            hierarchy_cfg.reach_threshold,
        )
        self._pending_clip = 0.0
        self._last_grad_norm = torch.zeros(())

    def configure_model(self) -> None:
        """trainer.compile: compile the dense networks in place (state-dict keys unchanged).

        The S5 scans and the acting loop stay eager: their shapes change between training
        (parallel over T), acting (E) and imagination (B·T), which would trigger recompiles.
        """
        if not self.cfg.trainer.compile:
            return
        for subactor in self.hierarchy.levels:
            if not subactor.owns_world_model:
                subactor.actor_critic.actor.compile()
                continue
            world_model = subactor.world_model
            for network in (
                world_model.encoder,
                world_model.decoder,
                world_model.reward_head,
                world_model.continue_head,
                subactor.actor_critic.actor,
            ):
                network.compile()

    # ------------------------------------------------------------------------------------------
    # optimisers

    def _optimizer_names(self) -> list[str]:
        names = []
        for index, subactor in enumerate(self.hierarchy.levels):
            names += [f"level{index}/{part}" for part in subactor.parameter_groups()]
        return names

    def _optimizer_config(self, part: str) -> OptimizerConfig:
        root = part.split("/")[0]
        return getattr(self.cfg.optim, root)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """One AdamW per (level, part), in the order of ``self.optimizer_names``."""
        optimizers: list[torch.optim.Optimizer] = []
        for subactor in self.hierarchy.levels:
            for part, params in subactor.parameter_groups().items():
                settings = self._optimizer_config(part)
                decay = settings.weight_decay
                if self.cfg.compat.weight_decay_original:
                    decay = ORIGINAL_WEIGHT_DECAY
                optimizers.append(
                    torch.optim.AdamW(params, lr=settings.lr, eps=settings.eps, weight_decay=decay)
                )
        return optimizers

    def named_optimizers(self) -> dict[str, Any]:
        """Optimisers addressed by ``level{i}/{part}``, never by list position."""
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        return dict(zip(self.optimizer_names, optimizers, strict=True))

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        if isinstance(batch, HierarchyBatch):
            return batch.to(device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _step(self, name: str, optimizer: Any, update: int) -> Tensor:
        """Warm-up learning rate, clip by global norm, step, zero. Returns the pre-clip norm.

        Under a Trainer the clipping happens in :meth:`on_before_optimizer_step`, which Lightning
        calls inside ``optimizer.step()`` after unscaling the gradients (``16-mixed``); clipping
        before the step, as ``self.clip_gradients`` does with manual optimisation, would clip
        the scaled gradients.
        """
        settings = self._optimizer_config(name.split("/", 1)[1])
        if settings.warmup > 0:
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * min(1.0, (update + 1) / settings.warmup)
        if self._trainer is None:  # plain loop (hieros-bench's reference, notebooks)
            grad_norm = clip_by_global_norm(optimizer, settings.grad_clip)
            optimizer.step()
        else:
            self._pending_clip = settings.grad_clip
            optimizer.step()
            grad_norm = self._last_grad_norm
        optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the (unscaled) gradients of the optimiser :meth:`_step` is stepping."""
        self._last_grad_norm = clip_by_global_norm(optimizer, self._pending_clip)

    # ------------------------------------------------------------------------------------------
    # training

    def training_step(self, batch: HierarchyBatch, batch_index: int) -> None:
        """One training call: every level whose batch is present trains once (§2, §8)."""
        self.train_call(batch, self.named_optimizers())

    def train_call(self, batch: HierarchyBatch, optimizers: dict[str, Any]) -> None:
        """The training call itself, usable with plain optimisers outside a Trainer."""
        if self.first_train_env_step < 0:
            self.first_train_env_step.fill_(int(self.env_steps))
        level0: tuple[LatentState, Batch] | None = None
        for index, level_batch in enumerate(batch.levels):
            if level_batch is None or index >= self.active_levels():
                continue
            posterior = self._train_level(index, level_batch, optimizers, level0)
            if index == 0:
                level0 = (posterior, level_batch)
            self.updates[index] += 1
        self.train_calls += 1

    def _train_level(
        self,
        index: int,
        batch: Batch,
        optimizers: dict[str, Any],
        level0: tuple[LatentState, Batch] | None = None,
    ) -> LatentState:
        """World-model step, then one behaviour step (critics, actor) and the autoencoder step.

        A level without a world model of its own (hierarchy.shared_world_model) skips the first
        and imagines from level 0's posterior of this call, ``level0``. Returns the posterior.
        """
        subactor = self.hierarchy.levels[index]
        prefix = f"level{index}"
        update = int(self.updates[index])
        self._check_finite(index, "batch", {"reward": batch.reward, "action": batch.action})
        if subactor.owns_world_model:
            posterior = self.train_world_model(index, batch, optimizers, update)
            behavior = subactor.behavior_losses(posterior, batch)
        else:
            assert level0 is not None, "level 0 trains on every call before the levels above"
            posterior, level0_batch = level0
            behavior = shared_behavior_losses(
                self.hierarchy.levels, index, posterior, level0_batch.is_terminal
            )
        named = {"actor": behavior.actor_loss}
        named |= {f"critic/{term}": loss for term, loss in behavior.critic_losses.items()}
        self._check_finite(index, "behavior", named)
        total = sum(named.values(), torch.zeros((), device=self.device))
        if behavior.autoencoder_losses:
            self._check_finite(index, "subgoal_ae", behavior.autoencoder_losses)
            assert subactor.autoencoder is not None
            total = total + weighted_total(
                behavior.autoencoder_losses, subactor.autoencoder.scales()
            )
        # The graphs of actor, critics and autoencoder are disjoint (inputs detached), so one
        # backward pass fills each optimiser's own gradients.
        self._backward(total)
        for part in list(named) + (["subgoal_ae"] if behavior.autoencoder_losses else []):
            norm = self._step(f"{prefix}/{part}", optimizers[f"{prefix}/{part}"], update)
            behavior.metrics[f"grad_norm/{part}"] = norm
        self._collect(f"{prefix}/behavior", behavior.metrics)
        if behavior.autoencoder_losses:
            self._collect(f"{prefix}/subgoal_ae", behavior.autoencoder_losses)
        return posterior

    def train_world_model(
        self, index: int, batch: Batch, optimizers: dict[str, Any], update: int
    ) -> LatentState:
        """One world-model step of level ``index``; returns the posterior [B, T]."""
        prefix = f"level{index}"
        losses, posterior, metrics = self.hierarchy.levels[index].world_model_losses(batch)
        self._check_finite(index, "wm", losses)
        total = weighted_total(losses, self.cfg.world_model.loss_scales)
        self._backward(total)
        metrics["grad_norm"] = self._step(
            f"{prefix}/world_model", optimizers[f"{prefix}/world_model"], update
        )
        self._collect(f"{prefix}/wm", {**losses, **metrics})
        return posterior

    def _backward(self, loss: Tensor) -> None:
        if self._trainer is None:
            loss.backward()
        else:
            self.manual_backward(loss)

    def _check_finite(self, level: int, section: str, losses: dict[str, Tensor]) -> None:
        # One host sync for all terms on the train-call path; the loop runs only on failure.
        all_finite = torch.stack([torch.isfinite(value).all() for value in losses.values()]).all()
        if bool(all_finite):
            return
        for term, value in losses.items():
            if not bool(torch.isfinite(value).all()):
                shown = value.item() if value.numel() == 1 else "contains NaN/inf"
                raise NonFiniteLossError(
                    f"non-finite value at level {level}: {section}/{term} = {shown} "
                    f"(env step {int(self.env_steps)}, train call {int(self.train_calls)}); "
                    "try debug=anomaly to locate it"
                )

    # ------------------------------------------------------------------------------------------
    # acting, counters, metrics

    def active_levels(self) -> int:
        """Levels switched on: level i from env step i·activate_every (add_hierarchy_every)."""
        every = self.cfg.hierarchy.activate_every
        return min(self.cfg.hierarchy.levels, int(self.env_steps) // every + 1)

    def act(
        self,
        obs: Tensor,
        reward: Tensor,
        is_first: Tensor,
        is_last: Tensor,
        is_terminal: Tensor,
        carry: ActCarry,
        mode: str,
    ) -> tuple[Tensor, ActCarry, list[LevelRecord | None]]:
        """The policy of the whole hierarchy for one env step (see Hierarchy.act), in eval mode.

        Callers that act many times in a row wrap the loop in ``evaluation_mode(module)`` so the
        mode is switched once for the loop instead of twice per step.
        """
        with evaluation_mode(self):
            action, carry, records = self.hierarchy.act(
                obs, reward, is_first, is_last, is_terminal, carry, mode, self.active_levels()
            )
        if mode == "train":
            self.diagnostics.update(records, carry)
        return action, carry, records

    def count_env_steps(self, steps: int) -> None:
        self.env_steps += steps
        self.env_frames += steps * self.cfg.env.action_repeat

    def replay_ratio(self) -> float:
        """Replayed level-0 steps per env step since training started (DESIGN.md §6)."""
        start = int(self.first_train_env_step)
        steps = int(self.env_steps) - start
        if start < 0 or steps <= 0:
            return 0.0
        replayed = int(self.train_calls) * self.cfg.replay.batch_size * self.cfg.replay.batch_length
        return replayed / steps

    def _collect(self, prefix: str, metrics: dict[str, Tensor]) -> None:
        for key, value in metrics.items():
            if isinstance(value, Tensor) and value.numel() == 1:
                self.pending_metrics.setdefault(f"{prefix}/{key}", []).append(value.detach())

    def pop_metrics(self) -> dict[str, float]:
        """Means of everything collected since the last call, plus the counters."""
        means = {
            key: float(torch.stack(values).float().mean())
            for key, values in self.pending_metrics.items()
        }
        self.pending_metrics = {}
        means.update(self.diagnostics.compute(self.hierarchy.levels, self.active_levels()))
        self.diagnostics.reset()
        means.update(self.counter_metrics())
        return means

    def counter_metrics(self) -> dict[str, float]:
        metrics = {
            "env_steps": float(self.env_steps),
            "env_frames": float(self.env_frames),
            "train_calls": float(self.train_calls),
            "replay/ratio": self.replay_ratio(),
        }
        for index in range(self.cfg.hierarchy.levels):
            metrics[f"updates/level{index}"] = float(self.updates[index])
        return metrics

    # ------------------------------------------------------------------------------------------
    # checkpoint extras: version and RNG states (weights, optimisers, buffers come from Lightning)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hieros_version"] = __version__
        checkpoint["rng_states"] = capture_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if states is not None:
            restore_rng_states(states)
