"""hieros-train: validate → seed → build env, replay, datamodule, module, callbacks → fit.

Re-running the same command on the same run dir resumes from ``<run_dir>/checkpoints/last.ckpt``
with the same counters, replay, optimiser, RNG and env states (DESIGN.md §4.8). Before anything is
written into the run dir the config, the env and (on resume) the checkpoint and the recorded
config are checked; then the run dir is locked for this process.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from hieros_pl import provenance
from hieros_pl.builders import (
    CONF_DIR,
    RUN_CONFIG,
    build_datamodule,
    build_env,
    build_loggers,
    build_module,
    compose_config,
    load_run_config,
    save_run_config,
    seed_everything,
)
from hieros_pl.config import (
    Config,
    composition_error,
    config_diff,
    register_configs,
    run_seed,
    to_config,
)
from hieros_pl.console import configure_console
from hieros_pl.errors import cli_boundary
from hieros_pl.preemption import Preempted, Preemption

log = logging.getLogger(__name__)

RUN_LOG = "train.log"


def resume_point(cfg: Config, run_dir: Path) -> tuple[Path | None, int | None]:
    """(checkpoint, its env step) to resume from, after checking the recorded config.

    Raises CheckpointError for a corrupt checkpoint and RunDirError for an unsafe config change.
    """
    from hieros_pl.callbacks.checkpoint import checkpoint_env_steps, last_checkpoint
    from hieros_pl.run_dir import check_resume_config

    checkpoint = last_checkpoint(run_dir)
    if checkpoint is None:
        return None, None
    steps = checkpoint_env_steps(checkpoint)
    if (run_dir / RUN_CONFIG).exists():
        for change in check_resume_config(load_run_config(run_dir), cfg, run_dir):
            log.info("resume applies the config change %s", change)
    else:
        log.warning("run dir %s has a checkpoint but no %s to compare with", run_dir, RUN_CONFIG)
    return checkpoint, steps


@contextmanager
def run_log(run_dir: Path) -> Iterator[None]:
    """Append this process's log records to ``<run_dir>/train.log``."""
    handler = logging.FileHandler(run_dir / RUN_LOG, mode="a")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    if level > logging.INFO or level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def run(cfg: Config, extra_callbacks: list[Any] | None = None) -> Any:
    """Train ``cfg`` in ``cfg.run_dir`` (resuming if it holds a checkpoint); returns the module.

    Returns None when the run was already complete. Raises :class:`Preempted` after a
    pre-emption signal, once the checkpoint is written.
    """
    from hieros_pl.run_dir import RunDirLock, check_run_dir

    run_dir = Path(cfg.run_dir)
    check_run_dir(run_dir)
    env = build_env(cfg)
    lock = RunDirLock(run_dir)
    try:
        lock.acquire()
        resume_from, resume_step = resume_point(cfg, run_dir)
        with run_log(run_dir):
            if resume_step is not None and resume_step >= cfg.env_steps:
                env.close()
                finish_complete_run(cfg, run_dir, resume_step)
                return None
            # Installed before anything is built: a signal during start-up is honoured at the
            # first safe point (the first prefill step writes the checkpoint), never by the
            # default handler.
            preemption = Preemption()
            preemption.install()
            try:
                return _fit(
                    cfg, env, run_dir, resume_from, resume_step, extra_callbacks, preemption
                )
            finally:
                preemption.restore()
    finally:
        env.close()
        lock.release()


def _fit(
    cfg: Config,
    env: Any,
    run_dir: Path,
    resume_from: Path | None,
    resume_step: int | None,
    extra_callbacks: list[Any] | None,
    preemption: Preemption,
) -> Any:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from hieros_pl.callbacks.checkpoint import EnvStepCheckpoint
    from hieros_pl.callbacks.env_loop import EnvLoop
    from hieros_pl.callbacks.evaluation import Evaluation
    from hieros_pl.callbacks.metrics_logger import MetricsLogger
    from hieros_pl.callbacks.progress import EnvStepProgressBar
    from hieros_pl.callbacks.videos import Videos
    from hieros_pl.callbacks.wandb_run import FinishWandbRun
    from hieros_pl.envs import env_spec
    from hieros_pl.module import HierosModule

    if resume_step is not None:
        log.info("resuming %s from env step %d (%s)", run_dir, resume_step, resume_from)
    save_run_config(cfg, run_dir)
    identity = provenance.run_identity(cfg)
    record = provenance.collect(cfg, provenance.paper_preset(), identity)
    provenance.write(run_dir, record)
    seed_everything(cfg)
    if cfg.trainer.threads > 0:
        import torch

        torch.set_num_threads(cfg.trainer.threads)
    spec = env_spec(env)
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
        env_state=saves_env_state(cfg.env),
        safe_point=preemption.check,
    )
    checkpoint = EnvStepCheckpoint(run_dir, cfg.callbacks.checkpoint_every, preemption)
    callbacks = [
        env_loop,
        MetricsLogger(env_loop, cfg.logger.log_every, cfg.env_steps),
        checkpoint,
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
        logger=build_loggers(cfg, run_dir, identity, record, resume_step),
        callbacks=callbacks,
        plugins=cluster_plugins(),
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        detect_anomaly=cfg.trainer.detect_anomaly,
        default_root_dir=str(run_dir),
    )
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except (Preempted, SIGTERMException) as error:
        signum = error.signum if isinstance(error, Preempted) else int(signal.SIGTERM)
        log.warning(
            "pre-empted by %s at env step %d; checkpoint written, rerun the command to resume",
            signal.Signals(signum).name,
            int(module.env_steps),
        )
        preemption.hand_on(signum)
        raise Preempted(signum) from None
    return module


def finish_complete_run(cfg: Config, run_dir: Path, steps: int) -> None:
    """A run at its budget: run the final evaluation if it is missing, else nothing to do."""
    from hieros_pl.callbacks.checkpoint import last_checkpoint, load_checkpoint
    from hieros_pl.callbacks.evaluation import Evaluation

    evaluation = Evaluation(cfg, run_dir, None)
    if not evaluation.final_missing(steps):
        log.info("run in %s already reached env_steps=%d; nothing to do", run_dir, cfg.env_steps)
        return
    log.info(
        "run in %s reached its budget at env step %d; running its final evaluation", run_dir, steps
    )
    checkpoint = last_checkpoint(run_dir)
    assert checkpoint is not None
    save_run_config(cfg, run_dir)
    seed_everything(cfg)
    module = build_module(cfg)
    module.load_state_dict(load_checkpoint(checkpoint)["state_dict"])
    loggers = build_loggers(cfg, run_dir, resume_step=steps)
    preemption = Preemption()
    preemption.install()
    try:
        preemption.interrupt_at_once()
        evaluation.run_final(loggers, module)
    except Preempted as error:
        log.warning("pre-empted during the final evaluation; rerun the command to run it")
        preemption.hand_on(error.signum)
        raise
    finally:
        preemption.restore()
        for logger in loggers:
            logger.finalize("success")


def saves_env_state(env: Any) -> bool:
    """Whether the env kind's state goes into the checkpoint (ALE, catch, navigation)."""
    from hieros_pl.envs.state import SAVEABLE_KINDS

    return env.kind in SAVEABLE_KINDS


def cluster_plugins() -> list[Any]:
    """Under SLURM, leave requeueing to submitit/SLURM (Lightning's own would requeue too)."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def _hydra_entry(cfg: DictConfig) -> None:
    with cli_boundary("hieros-train"):
        config = to_config(cfg)
        configure_console()
        log_diff_against_paper_preset(config)
        try:
            run(config)
        except Preempted as error:
            # The checkpoint is written; the exit status says the run is not finished.
            raise SystemExit(128 + error.signum) from None


def preflight(argv: list[str]) -> None:
    """Compose and validate every job's config before Hydra creates or writes anything.

    Hydra would report a composition error over several lines with a hint and only after it
    set up the job; here each one becomes a ConfigError naming the key (see ``cli_boundary``).
    """
    from hydra._internal.utils import get_args_parser

    from hieros_pl.run_dir import check_run_dir

    args, _ = get_args_parser().parse_known_args(argv)
    if any(getattr(args, name, None) for name in HYDRA_ONLY_FLAGS):
        return
    jobs = job_overrides(list(args.overrides), bool(args.multirun))
    for overrides in jobs:
        compose_config(overrides)
    output_dir = None if args.cfg or not jobs else hydra_output_dir(jobs[0], bool(args.multirun))
    if output_dir is not None:
        check_run_dir(output_dir)  # Hydra creates it before the job; its errors are tracebacks


def hydra_output_dir(overrides: list[str], multirun: bool) -> Path | None:
    """The directory Hydra creates before it starts a job: ``hydra.run.dir`` (or ``sweep.dir``).

    None when it needs a running Hydra app to resolve (``${hydra:...}``); Hydra resolves it then.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        directory = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except (OmegaConfBaseException, ValueError):
        return None
    return Path(str(directory))


def with_run_dir_as_hydra_dir(argv: list[str]) -> list[str]:
    """``argv`` plus ``hydra.run.dir=<dir>`` when a single run names its ``run_dir`` and not
    Hydra's, so that Hydra creates that directory instead of an unused, empty
    ``runs/<name>/seed<seed>`` below the working directory. Multiruns keep their sweep dirs."""
    if any(arg in ("-m", "--multirun") for arg in argv):
        return argv
    keys = {arg.split("=", 1)[0].lstrip("+"): arg for arg in argv if "=" in arg}
    if "run_dir" not in keys or "hydra.run.dir" in keys:
        return argv
    return [*argv, "hydra.run.dir=" + keys["run_dir"].split("=", 1)[1]]


HYDRA_ONLY_FLAGS = (
    "help",
    "hydra_help",
    "info",
    "shell_completion",
    "config_path",
    "config_dir",
    "config_name",
    "experimental_rerun",
)
"""Command-line flags after which Hydra does not train (or reads other configs): no preflight."""


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The distinct override lists of the jobs a command launches (sweeps expanded)."""
    if not multirun:
        return [overrides]
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise composition_error(error) from error
    jobs: list[list[str]] = []
    for batch in BasicSweeper.split_arguments(parsed, None):
        for job in batch:
            if list(job) not in jobs:
                jobs.append(list(job))
    return jobs


def log_diff_against_paper_preset(config: Config) -> None:
    """Startup log of every key that differs from ``experiment=atari100k`` (DESIGN.md §4.2)."""
    from hydra import compose

    preset = to_config(compose("train", overrides=["experiment=atari100k", "run_dir=unused"]))
    changes = config_diff(config, preset)
    log.info("config vs the paper preset (experiment=atari100k): %d difference(s)", len(changes))
    for change in changes:
        log.info("  %s", change)


def main() -> None:
    import sys

    import hydra

    register_configs()
    sys.argv[1:] = with_run_dir_as_hydra_dir(sys.argv[1:])
    with cli_boundary("hieros-train"):
        preflight(sys.argv[1:])
    hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")(_hydra_entry)()


if __name__ == "__main__":
    main()
