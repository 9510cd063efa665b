"""hieros-train: validate → seed → build env, replay, datamodule, module, callbacks → fit.

Re-running the same command on the same run dir resumes from ``<run_dir>/checkpoints/last.ckpt``
with the same counters, replay, optimiser and RNG states (DESIGN.md §4.8).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hieros_pl.config import (
    Config,
    ConfigError,
    config_diff,
    register_configs,
    run_seed,
    to_config,
)

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
RUN_CONFIG = "config.yaml"


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Compose ``conf/train.yaml`` with ``overrides`` outside a Hydra app (bench, notebooks)."""
    from hydra import compose, initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["run_dir=unused", *overrides])
    return to_config(cfg)


def load_run_config(run_dir: str | Path) -> Config:
    """The validated config a run dir was trained with."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.exists():
        raise FileNotFoundError(f"no {RUN_CONFIG} in run dir {run_dir}")
    schema = OmegaConf.structured(Config)
    try:
        merged = OmegaConf.merge(schema, OmegaConf.load(path))
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        raise ConfigError(
            f"{path}: key {key!r} does not fit this version's config schema "
            f"({type(error).__name__}); the run was written by another version of hieros-pl"
        ) from None
    return to_config(merged)


def save_run_config(cfg: Config, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / RUN_CONFIG)


def build_module(cfg: Config) -> Any:
    """The HierosModule for ``cfg``'s environment (builds and closes one env to read its spaces)."""
    from hieros_pl.envs import env_spec, make_env
    from hieros_pl.module import HierosModule

    env = make_env(cfg.env, seed=cfg.seed, num_envs=1)
    try:
        spec = env_spec(env)
    finally:
        env.close()
    return HierosModule(cfg, spec.obs_shape, spec.obs_is_image, spec.action_dim, spec.discrete)


def build_datamodule(cfg: Config, module: Any, run_dir: Path) -> Any:
    """One replay buffer per level, each writing chunk files under ``<run_dir>/replay/level{i}``."""
    import numpy as np

    from hieros_pl.data.datamodule import ReplayDataModule
    from hieros_pl.replay.buffer import SequenceBuffer, step_spec

    buffers = []
    for spec in module.specs:
        obs_dtype = np.dtype(np.uint8) if spec.obs_is_image else np.dtype(np.float32)
        subgoal_dim = cfg.world_model.deter if spec.goal_code_dim else 0
        fields = step_spec(
            spec.obs_shape, obs_dtype, spec.action_dim, subgoal_dim, spec.goal_code_dim
        )
        buffers.append(
            SequenceBuffer(
                cfg.replay,
                fields,
                num_envs=cfg.env.num_envs,
                seed=replay_seed(cfg, spec.level),
                directory=run_dir / "replay" / f"level{spec.level}",
                etbs_scale_by_capacity=cfg.compat.etbs_scaling_original,
            )
        )
    return ReplayDataModule(buffers, module.hierarchy.level_strides())


def build_loggers(cfg: Config, run_dir: Path) -> list[Any]:
    """CSV always; wandb (offline by default, one run per job, resumable); TensorBoard optional."""
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

    loggers: list[Any] = [CSVLogger(save_dir=str(run_dir), name="csv", version="")]
    if cfg.logger.wandb and cfg.logger.wandb_mode != "disabled":
        id_file = run_dir / "wandb_id.txt"
        if not id_file.exists():
            import uuid

            id_file.write_text(uuid.uuid4().hex[:8])
        loggers.append(
            WandbLogger(
                save_dir=str(run_dir),
                project=cfg.logger.project,
                group=cfg.logger.group or cfg.name,
                name=f"{cfg.name}-seed{cfg.seed}",
                id=id_file.read_text().strip(),
                resume="allow",
                mode=cfg.logger.wandb_mode,
                offline=cfg.logger.wandb_mode == "offline",
                config=asdict(cfg),
            )
        )
    if cfg.logger.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    return loggers


def replay_seed(cfg: Config, level: int) -> int:
    """Level i's sampler seed; the original gives every sampler the fixed seed 0 (D12)."""
    seed = run_seed(cfg)
    return 0 if seed is None else seed + 7919 * level


def seed_everything(cfg: Config) -> None:
    seed = run_seed(cfg)
    if seed is None:
        return
    import lightning.pytorch as pl

    pl.seed_everything(seed, workers=True, verbose=False)


def finished_steps(checkpoint: Path) -> int:
    """The env steps a checkpoint reached; memory-mapped, so the weights are not read."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    return int(state["state_dict"]["env_steps"])


def run(cfg: Config, extra_callbacks: list[Any] | None = None) -> Any:
    """Train ``cfg`` in ``cfg.run_dir`` (resuming if it holds a checkpoint); returns the module."""
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from hieros_pl.callbacks.checkpoint import EnvStepCheckpoint, last_checkpoint
    from hieros_pl.callbacks.env_loop import EnvLoop
    from hieros_pl.callbacks.evaluation import Evaluation
    from hieros_pl.callbacks.metrics_logger import MetricsLogger
    from hieros_pl.callbacks.progress import EnvStepProgressBar
    from hieros_pl.envs import env_spec, make_env

    run_dir = Path(cfg.run_dir)
    resume_from = last_checkpoint(run_dir)
    if resume_from is not None and finished_steps(resume_from) >= cfg.env_steps:
        log.info("run in %s already reached env_steps=%d; nothing to do", run_dir, cfg.env_steps)
        return None
    save_run_config(cfg, run_dir)
    seed_everything(cfg)
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    env = make_env(cfg.env, seed=run_seed(cfg))
    spec = env_spec(env)
    from hieros_pl.module import HierosModule

    module = HierosModule(cfg, spec.obs_shape, spec.obs_is_image, spec.action_dim, spec.discrete)
    datamodule = build_datamodule(cfg, module, run_dir)
    env_loop = EnvLoop(
        env,
        spec,
        seed=run_seed(cfg),
        budget=cfg.env_steps,
        train_ratio=cfg.train_ratio,
        terminal_flag_original=cfg.compat.terminal_flag_original,
        policy_exceptions_original=cfg.compat.policy_exceptions_original,
    )
    callbacks = [
        env_loop,
        MetricsLogger(env_loop, cfg.logger.log_every, cfg.env_steps),
        EnvStepCheckpoint(run_dir, cfg.callbacks.checkpoint_every),
        Evaluation(cfg, run_dir, env_loop),
        EnvStepProgressBar(cfg.env_steps, refresh_rate=max(1, cfg.env_steps // 1000)),
        *(extra_callbacks or []),
    ]
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=cfg.trainer.precision,  # type: ignore[arg-type]  # validated against PRECISIONS
        max_steps=-1,
        max_epochs=-1,
        logger=build_loggers(cfg, run_dir),
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        detect_anomaly=cfg.trainer.detect_anomaly,
        default_root_dir=str(run_dir),
    )
    try:
        # weights_only=False: our own checkpoints carry numpy RNG and replay-cursor state.
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=False)
    except SIGTERMException:
        # EnvStepCheckpoint wrote the checkpoint at the end of the interrupted batch.
        log.warning("pre-empted at env step %d; rerun the command to resume", int(module.env_steps))
    finally:
        env.close()
    return module


def _hydra_entry(cfg: DictConfig) -> None:
    try:
        config = to_config(cfg)
    except ConfigError as error:
        raise SystemExit(f"hieros-train: invalid config: {error}") from None
    log_diff_against_paper_preset(config)
    run(config)


def log_diff_against_paper_preset(config: Config) -> None:
    """Startup log of every key that differs from ``experiment=atari100k`` (DESIGN.md §4.2)."""
    from hydra import compose

    preset = to_config(compose("train", overrides=["experiment=atari100k", "run_dir=unused"]))
    changes = config_diff(config, preset)
    log.info("config vs the paper preset (experiment=atari100k): %d difference(s)", len(changes))
    for change in changes:
        log.info("  %s", change)


def main() -> None:
    import hydra

    register_configs()
    hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")(_hydra_entry)()


if __name__ == "__main__":
    main()
