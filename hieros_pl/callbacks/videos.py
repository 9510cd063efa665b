"""Videos every ``logger.video_every`` env steps and at the final evaluation: written to
``<run_dir>/videos/<name>_<env_steps>.mp4`` and sent to wandb and TensorBoard when they log.

Each video comes from a *frame source*, a function of the module and the replay returning
frames [T, Himg', Wimg', C] uint8 (or None when it has nothing to show yet). The defaults are
``episode`` (one greedy episode on a fresh env) and ``open_loop`` (world-model predictions on
replayed sequences: truth | prediction | error). Further sources, e.g. decoded subgoals, are
added with ``Videos(cfg, run_dir, {**default_sources(cfg), "subgoals": function})``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from hieros_pl.config import Config
from hieros_pl.data.datamodule import ReplayDataModule
from hieros_pl.module import HierosModule
from hieros_pl.replay.buffer import SequenceBuffer, SequenceKeys
from hieros_pl.videos.episode import record_episode
from hieros_pl.videos.open_loop import CONTEXT, open_loop_prediction, side_by_side
from hieros_pl.videos.writer import write_video

log = logging.getLogger(__name__)

FrameSource = Callable[[HierosModule, ReplayDataModule], "np.ndarray | None"]
OPEN_LOOP_SEQUENCES = 4
FPS = 16


def spread_sequences(buffer: SequenceBuffer, count: int) -> SequenceKeys | None:
    """``count`` stored sequences evenly spread from the oldest to the newest, chosen without
    the sampler (no RNG drawn, no visit counted: training sampling is left as it was)."""
    live = buffer.keys.live()
    N = len(live["start"])
    if N == 0:
        return None
    chosen = np.unique(np.linspace(0, N - 1, count).round().astype(np.int64))
    return SequenceKeys(env=live["env"][chosen].copy(), start=live["start"][chosen].copy())


def episode_frames(module: HierosModule, cfg: Config) -> np.ndarray:
    """A greedy episode, frame by frame (the observations the agent saw)."""
    frames, _ = record_episode(module, cfg, "greedy")
    return frames


def open_loop_frames(
    module: HierosModule, replay: ReplayDataModule, sequences: int = OPEN_LOOP_SEQUENCES
) -> np.ndarray | None:
    """Level 0's open-loop prediction on ``sequences`` replayed sequences spread over the
    replay's age, side by side (truth | prediction | error); None while the replay is empty."""
    keys = spread_sequences(replay.buffers[0], sequences)
    if keys is None:
        return None
    batch = replay.buffers[0].gather(keys).to(module.device)
    world_model = module.hierarchy.levels[0].world_model
    T = batch.shape[1]
    prediction = open_loop_prediction(world_model, batch, context=min(CONTEXT, T // 2))
    return side_by_side(batch.obs, prediction)


def subgoal_frames(
    module: HierosModule, replay: ReplayDataModule, sequences: int = OPEN_LOOP_SEQUENCES
) -> np.ndarray | None:
    """Level 0's replayed frames beside the decoded subgoal it held at each step, for
    ``sequences`` sequences spread over the replay's age; None while the replay is empty or
    when level 0 observes vectors (no frames to show)."""
    from hieros_pl.videos.subgoals import observed_beside_goal

    keys = spread_sequences(replay.buffers[0], sequences)
    if keys is None or not module.specs[0].obs_is_image:
        return None
    batch = replay.buffers[0].gather(keys).to(module.device)
    return observed_beside_goal(module.hierarchy, batch)


def level_subgoal_frames(level: int) -> FrameSource:
    """Frame source for level ``level`` ≥ 1: what it saw above the goal it held, per step."""

    def frames(module: HierosModule, replay: ReplayDataModule) -> np.ndarray | None:
        from hieros_pl.videos.subgoals import seen_above_goal

        subactor = module.hierarchy.levels[level]
        keys = spread_sequences(replay.buffers[level], OPEN_LOOP_SEQUENCES)
        if keys is None or not module.specs[0].obs_is_image or not subactor.owns_world_model:
            return None
        batch = replay.buffers[level].gather(keys).to(module.device)
        return seen_above_goal(module.hierarchy, level, batch)

    return frames


def default_sources(cfg: Config) -> dict[str, FrameSource]:
    """``episode`` and ``open_loop``; ``subgoals`` (level 0) when level 0 receives subgoals from
    a level above, and ``subgoals_level{i}`` for every higher level that receives one."""
    sources: dict[str, FrameSource] = {
        "episode": lambda module, replay: episode_frames(module, cfg),
        "open_loop": open_loop_frames,
    }
    if cfg.hierarchy.levels > 1:
        sources["subgoals"] = subgoal_frames
    for level in range(1, cfg.hierarchy.levels - 1):
        sources[f"subgoals_level{level}"] = level_subgoal_frames(level)
    return sources


class Videos(pl.Callback):
    """Writes one video per frame source (``default_sources`` unless ``sources`` is given) at
    the interval and after the final evaluation."""

    def __init__(
        self, cfg: Config, run_dir: str | Path, sources: Mapping[str, FrameSource] | None = None
    ) -> None:
        self.cfg = cfg
        self.every = cfg.logger.video_every
        self.directory = Path(run_dir) / "videos"
        self.sources = dict(default_sources(cfg) if sources is None else sources)
        self.next_video = self.every

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        if self.every > 0 and not pl_module.hierarchy.levels[0].world_model.obs_is_image:
            log.info("videos off: %s has vector observations", self.cfg.env.kind)
            self.every = 0
        if self.every > 0:
            self.next_video = (int(pl_module.env_steps) // self.every + 1) * self.every

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        assert isinstance(pl_module, HierosModule)
        if self.every > 0 and int(pl_module.env_steps) >= self.next_video:
            self.next_video += self.every
            self.write_all(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, HierosModule)
        settings = self.cfg.callbacks
        final = settings.final_eval and not self.cfg.compat.eval_protocol_original
        if self.every > 0 and final and int(pl_module.env_steps) >= self.cfg.env_steps:
            self.write_all(trainer, pl_module)

    def write_all(self, trainer: pl.Trainer, module: HierosModule) -> list[Path]:
        """Render every source, write its mp4 and send it to the video-capable loggers."""
        replay = trainer.datamodule  # type: ignore[attr-defined]  # set by fit(datamodule=...)
        assert isinstance(replay, ReplayDataModule)
        step = int(module.env_steps)
        paths = []
        for name, source in self.sources.items():
            frames = source(module, replay)
            if frames is None:
                continue
            path = write_video(self.directory / f"{name}_{step}.mp4", frames, FPS)
            send_video(trainer, f"video/{name}", path, frames, step)
            paths.append(path)
        return paths


def send_video(trainer: pl.Trainer, key: str, path: Path, frames: np.ndarray, step: int) -> None:
    """The mp4 to wandb, the frames to TensorBoard; nothing for loggers without video."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_video(key, [str(path)], step=step, format=["mp4"])
        elif isinstance(logger, TensorBoardLogger):
            from hieros_pl.videos.tensorboard import add_gif_video

            add_gif_video(logger.experiment, key, frames, step, FPS)
