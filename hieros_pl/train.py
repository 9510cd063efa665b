"""hieros-train: validate → seed → build env, replay, datamodule, module, callbacks → fit.

Re-running the same command on the same run dir resumes from ``<run_dir>/checkpoints/last.ckpt``
with the same counters, replay, optimiser and RNG states (DESIGN.md §4.8).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from hieros_pl import provenance
from hieros_pl.builders import (
    CONF_DIR,
    build_datamodule,
    build_loggers,
    save_run_config,
    seed_everything,
)
from hieros_pl.config import Config, ConfigError, config_diff, register_configs, run_seed, to_config
from hieros_pl.console import configure_console

log = logging.getLogger(__name__)


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
    from hieros_pl.callbacks.videos import Videos
    from hieros_pl.callbacks.wandb_run import FinishWandbRun
    from hieros_pl.envs import env_spec, make_env

    run_dir = Path(cfg.run_dir)
    resume_from = last_checkpoint(run_dir)
    if resume_from is not None and finished_steps(resume_from) >= cfg.env_steps:
        log.info("run in %s already reached env_steps=%d; nothing to do", run_dir, cfg.env_steps)
        return None
    save_run_config(cfg, run_dir)
    identity = provenance.run_identity(cfg)
    record = provenance.collect(cfg, provenance.paper_preset(), identity)
    provenance.write(run_dir, record)
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
        Videos(cfg, run_dir),
        FinishWandbRun(),
        *(extra_callbacks or []),
    ]
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=cfg.trainer.devices,
        precision=cfg.trainer.precision,  # type: ignore[arg-type]  # validated against PRECISIONS
        max_steps=-1,
        max_epochs=-1,
        logger=build_loggers(cfg, run_dir, identity, record),
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
    configure_console()
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
