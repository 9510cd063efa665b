"""A tiny two-level run with videos on writes every kind of video (episode, open loop, decoded
subgoals, and an extra source) into the run dir, the wandb offline run and TensorBoard."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from hieros_pl.callbacks.videos import Videos
from hieros_pl.data.datamodule import ReplayDataModule
from hieros_pl.module import HierosModule
from hieros_pl.replay.buffer import SequenceKeys
from hieros_pl.train import run
from tests.conftest import compose


def newest_frames(module: HierosModule, replay: ReplayDataModule) -> np.ndarray:
    """An extra frame source: the newest level-0 sequence as it was observed."""
    buffer = replay.buffers[0]
    live = buffer.keys.live()
    keys = SequenceKeys(env=live["env"][-1:].copy(), start=live["start"][-1:].copy())
    return buffer.gather(keys).obs[0].numpy()


def test_tiny_run_writes_episode_open_loop_subgoal_and_extra_videos_everywhere(
    tmp_path: Path,
) -> None:
    cfg = compose(
        "debug=fast",
        "hierarchy=depth2",
        "logger=default",
        "logger.wandb_mode=offline",
        "logger.tensorboard=true",
        "logger.video_every=60",
        "env_steps=100",
        "train_ratio=32",
        "callbacks.final_eval=true",
        "callbacks.eval_episodes=1",
        f"run_dir={tmp_path}",
    )
    extra = Videos(cfg, tmp_path, {"newest": newest_frames})
    run(cfg, extra_callbacks=[extra])

    def steps_of(kind: str) -> list[int]:
        return sorted(
            int(path.stem.rsplit("_", 1)[1]) for path in tmp_path.glob(f"videos/{kind}_*")
        )

    for kind in ("newest", "episode", "open_loop", "subgoals"):
        steps = steps_of(kind)
        assert len(steps) == 2 and 60 <= steps[0] < 100 and steps[1] == 100, (kind, steps)
    # open loop: 4 sequences of 16x16 frames stacked, 3 panels wide, enlarged 2x to >= 128 px.
    frames = imageio.mimread(tmp_path / "videos" / "open_loop_100.mp4")
    assert len(frames) == cfg.replay.batch_length
    assert frames[0].shape == (4 * 16 * 2, 3 * 16 * 2, 3)
    # decoded subgoals: 4 sequences stacked, observed | decoded goal, enlarged 2x.
    frames = imageio.mimread(tmp_path / "videos" / "subgoals_100.mp4")
    assert len(frames) == cfg.replay.batch_length
    assert frames[0].shape == (4 * 16 * 2, 2 * 16 * 2, 3)
    (run_files,) = tmp_path.glob("wandb/offline-run-*/files")
    for kind in ("episode", "open_loop", "subgoals", "newest"):
        assert len(list(run_files.glob(f"media/videos/video/{kind}_*.mp4"))) == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    for kind in ("episode", "open_loop", "subgoals", "newest"):
        assert [image.step for image in events.Images(f"video/{kind}")] == steps_of(kind)
