"""Builders that several entry points share: a run's config (composed, saved to and loaded from
its run dir), its module, datamodule, loggers and seeds.

``hieros-train``, ``hieros-eval``, ``hieros-bench``, the callbacks and the notebooks build from
here, so none of them imports another entry point.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hieros_pl.config import (
    Config,
    ConfigError,
    composition_error,
    register_configs,
    run_seed,
    to_config,
)
from hieros_pl.errors import EnvError, one_line

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from hieros_pl.provenance import RunIdentity

RUN_CONFIG = "config.yaml"


def conf_dir() -> Path:
    """The configs: ``hieros_pl/conf`` in an installed wheel, ``<checkout>/conf`` in a checkout."""
    package = Path(__file__).resolve().parent
    installed = package / "conf"
    return installed if (installed / "train.yaml").is_file() else package.parent / "conf"


CONF_DIR = conf_dir()


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Compose ``conf/train.yaml`` with ``overrides`` outside a Hydra app (bench, notebooks)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            cfg = compose("train", overrides=["run_dir=unused", *overrides])
        except HydraException as error:
            raise composition_error(error) from error
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


def build_loggers(
    cfg: Config,
    run_dir: Path,
    identity: RunIdentity | None = None,
    provenance: dict[str, Any] | None = None,
    resume_step: int | None = None,
) -> list[Any]:
    """CSV always; wandb (offline by default, one run per job, resumable); TensorBoard optional.

    ``identity`` (a :class:`hieros_pl.provenance.RunIdentity`) names and groups the wandb run;
    ``provenance`` goes into the wandb config beside the run's config. ``resume_step``: the env
    step a resumed run continues from; every logger keeps what was logged up to it and appends
    after it (wandb resumes the same run id, TensorBoard purges the events written after it).
    """
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    from hieros_pl.provenance import RunIdentity
    from hieros_pl.resumable_csv import ResumableCSVLogger

    if identity is None:
        identity = RunIdentity(
            cfg.logger.group or cfg.name, "default", f"{cfg.name}-seed{cfg.seed}"
        )
    loggers: list[Any] = [
        ResumableCSVLogger(save_dir=str(run_dir), resume_step=resume_step, name="csv", version="")
    ]
    if cfg.logger.wandb and cfg.logger.wandb_mode != "disabled":
        id_file = run_dir / "wandb_id.txt"
        if not id_file.exists():
            import uuid

            id_file.write_text(uuid.uuid4().hex[:8])
        from wandb import Settings

        config: dict[str, Any] = asdict(cfg)
        if provenance is not None:
            config["provenance"] = {key: provenance[key] for key in provenance if key != "config"}
        wandb_logger = WandbLogger(
            save_dir=str(run_dir),
            project=cfg.logger.project,
            group=identity.group,
            job_type=identity.job_type,
            tags=identity.tags,
            name=identity.name,
            id=id_file.read_text().strip(),
            resume="allow",
            mode=cfg.logger.wandb_mode,
            offline=cfg.logger.wandb_mode == "offline",
            config=config,
            # wandb's own banner and summary table are not for the console; one line is.
            settings=Settings(silent=True),
        )
        # Lightning always passes anonymous (None); wandb warns that the setting is deprecated.
        wandb_logger._wandb_init.pop("anonymous", None)
        loggers.append(wandb_logger)
        log.info(
            "wandb (%s): run %s in group %s under %s/wandb",
            cfg.logger.wandb_mode,
            identity.name,
            identity.group,
            run_dir,
        )
    if cfg.logger.tensorboard:
        loggers.append(
            TensorBoardLogger(
                save_dir=str(run_dir),
                name="tensorboard",
                version="",
                purge_step=None if resume_step is None else resume_step + 1,
            )
        )
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


def load_replay(cfg: Config, module: Any, checkpoint: Path) -> Any:
    """The run's replay as it was at ``checkpoint`` (chunk files of ``<run_dir>/replay``), for
    inspection after training: nothing is written."""
    from hieros_pl.callbacks.checkpoint import load_checkpoint

    datamodule = build_datamodule(cfg, module, checkpoint.parent.parent)
    state = load_checkpoint(checkpoint, mmap=True)
    datamodule.load_state_dict(state[type(datamodule).__name__])
    return datamodule


def build_env(cfg: Config, num_envs: int | None = None, seed_offset: int = 0) -> Any:
    """``make_env`` with its failures (unknown id, missing dependency, space) as EnvError; env i
    is seeded with the run seed + ``seed_offset`` + i (the evaluation envs use an offset)."""
    from gymnasium.error import Error as GymnasiumError

    from hieros_pl.envs import make_env

    seed = run_seed(cfg)
    try:
        return make_env(
            cfg.env, seed=None if seed is None else seed + seed_offset, num_envs=num_envs
        )
    except ImportError as error:
        raise EnvError(
            f"env.kind={cfg.env.kind} {_env_name(cfg)}needs a package that is not installed: "
            f"{one_line(error)}"
        ) from error
    except GymnasiumError as error:
        raise EnvError(f"env {_env_name(cfg)}cannot be built: {one_line(error)}") from error
    except ValueError as error:
        raise EnvError(one_line(error)) from error


def _env_name(cfg: Config) -> str:
    if cfg.env.kind == "gym":
        return f"env.id={cfg.env.id} "
    return f"env.game={cfg.env.game} " if cfg.env.kind == "atari100k" else ""
