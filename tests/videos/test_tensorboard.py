"""Videos reach TensorBoard as animated GIF image summaries that TensorBoard can read back."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from hieros_pl.videos.tensorboard import add_gif_video

tensorboard = pytest.importorskip("tensorboard")


def test_video_summary_round_trips_as_a_gif(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    frames = np.random.default_rng(0).integers(0, 256, (6, 16, 12, 3), dtype=np.uint8)
    writer = SummaryWriter(str(tmp_path))
    add_gif_video(writer, "video/episode", frames, step=7, fps=8)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images("video/episode")
    assert image.step == 7 and (image.height, image.width) == (16, 12)
    decoded = imageio.mimread(image.encoded_image_string, format="GIF")
    assert len(decoded) == 6 and decoded[0].shape[:2] == (16, 12)
