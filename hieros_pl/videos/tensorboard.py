"""Videos into TensorBoard as animated-GIF image summaries, TensorBoard's own video format.

torch's ``SummaryWriter.add_video`` encodes through ``moviepy.editor``, which moviepy 2 removed:
it prints a warning and writes nothing. Here imageio (already a dependency) encodes the GIF and
the summary goes through the writer's own file writer.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np


def gif_bytes(frames: np.ndarray, fps: int) -> bytes:
    """``frames`` [T, Himg, Wimg, C] uint8 as an animated GIF that loops."""
    import imageio.v2 as imageio

    buffer = io.BytesIO()
    imageio.mimsave(buffer, list(frames), format="GIF", duration=1000.0 / fps, loop=0)
    return buffer.getvalue()


def add_gif_video(writer: Any, tag: str, frames: np.ndarray, step: int, fps: int) -> None:
    """One video summary at ``step`` in a ``torch.utils.tensorboard.SummaryWriter``."""
    # frames: [T, Himg, Wimg, C] uint8
    from tensorboard.compat.proto.summary_pb2 import Summary

    _, height, width, channels = frames.shape
    image = Summary.Image(
        height=height,
        width=width,
        colorspace=channels,
        encoded_image_string=gif_bytes(frames, fps),
    )
    writer._get_file_writer().add_summary(
        Summary(value=[Summary.Value(tag=tag, image=image)]), step
    )
