"""Writes uint8 frame stacks as mp4 (imageio's ffmpeg writer), enlarged so players show them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_HEIGHT = 128
"""Frames are enlarged by pixel repetition to at least this height (64x64 Atari frames and
16x16 test frames are too small to watch and below what some players accept)."""
MACRO_BLOCK = 16
"""H.264 wants sides divisible by 16; frames are padded with black up to the next multiple."""


def enlarge(frames: np.ndarray, min_height: int = MIN_HEIGHT) -> np.ndarray:
    """Repeat pixels by an integer factor up to ``min_height``, pad to MACRO_BLOCK, RGB."""
    # frames: [T, Himg, Wimg, C] uint8, C in {1, 3} -> [T, H', W', 3] uint8
    Himg, C = frames.shape[1], frames.shape[3]
    assert frames.dtype == np.uint8, f"frames {frames.dtype}"
    assert C in (1, 3), f"frames have {C} channels"
    scale = max(1, -(-min_height // Himg))
    large = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    if C == 1:
        large = large.repeat(3, axis=3)
    pad_h = -large.shape[1] % MACRO_BLOCK
    pad_w = -large.shape[2] % MACRO_BLOCK
    return np.pad(large, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))


def write_video(path: Path, frames: np.ndarray, fps: int = 16) -> Path:
    """Write ``frames`` [T, Himg, Wimg, C] uint8 as an mp4 at ``path`` (parents created)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1: enlarge() already padded; imageio would otherwise resize and warn.
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in enlarge(frames):
            writer.append_data(frame)  # type: ignore[attr-defined]  # ffmpeg writer, untyped
    return path


def write_filmstrip(path: Path, frames: np.ndarray, count: int = 8) -> Path:
    """``count`` evenly spaced frames of [T, Himg, Wimg, C] uint8 side by side as one PNG."""
    import imageio.v2 as imageio

    T = frames.shape[0]
    chosen = np.unique(np.linspace(0, T - 1, min(count, T)).round().astype(np.int64))
    gap = np.full((*frames.shape[1:2], 2, frames.shape[3]), 255, dtype=np.uint8)
    strip = np.concatenate([part for index in chosen for part in (frames[index], gap)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, enlarge(strip[None])[0])
    return path
