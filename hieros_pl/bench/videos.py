"""What one video costs (hieros-bench videos), at the paper size and the tiny size.

- `video_open_loop`: decode 4 replayed sequences of T = 64 (paper) / 16 (tiny) open loop
  (context 5) and write the truth | prediction | error mp4, median ms;
- `video_episode_encode_per_1000_frames`: writing 1,000 env frames as mp4 (the acting cost of
  an episode video is its length times the policy step of `hieros-bench agent`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_pl.bench.timing import median_ms
from hieros_pl.bench.world_model import PAPER_ACTIONS, SIZES
from hieros_pl.data.batch import Batch
from hieros_pl.videos.open_loop import CONTEXT, open_loop_prediction, side_by_side
from hieros_pl.videos.writer import write_video
from hieros_pl.world_models.world_model import WorldModel

SEQUENCES = 4
LENGTHS = {"paper": 64, "tiny": 16}


def _batch(T: int, size: int) -> Batch:
    generator = torch.Generator().manual_seed(0)
    B = SEQUENCES
    obs = torch.randint(0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=generator)
    actions = torch.randint(0, PAPER_ACTIONS, (B, T), generator=generator)
    is_first = torch.zeros(B, T, dtype=torch.bool)
    is_first[:, 0] = True
    empty = torch.zeros(B, T, 0)
    never = torch.zeros(B, T, dtype=torch.bool)
    one_hot = torch.nn.functional.one_hot(actions, PAPER_ACTIONS).float()
    return Batch(obs, one_hot, torch.zeros(B, T), is_first, never, never.clone(), empty, empty)


def _one_video(model: WorldModel, batch: Batch, path: Path) -> None:
    prediction = open_loop_prediction(model, batch, CONTEXT)
    write_video(path, side_by_side(batch.obs, prediction))


def bench_videos() -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as directory:
        for name, make in SIZES.items():
            size = make()
            model = WorldModel(size.cfg, (size.image_size, size.image_size, 3), True, PAPER_ACTIONS)
            batch = _batch(LENGTHS[name], size.image_size)
            path = Path(directory) / f"{name}.mp4"

            def one_video(
                model: WorldModel = model, batch: Batch = batch, path: Path = path
            ) -> None:
                prediction = open_loop_prediction(model, batch, CONTEXT)
                write_video(path, side_by_side(batch.obs, prediction))

            figures.append(
                {
                    "name": "video_open_loop",
                    "size": name,
                    "value": median_ms(one_video, repeats=3),
                    "unit": "ms",
                    "sequences": SEQUENCES,
                    "length": LENGTHS[name],
                }
            )
        frames = np.random.default_rng(0).integers(0, 256, (1000, 64, 64, 3), dtype=np.uint8)
        encode = median_ms(lambda: write_video(Path(directory) / "episode.mp4", frames), repeats=3)
        figures.append(
            {"name": "video_episode_encode_per_1000_frames", "value": encode, "unit": "ms"}
        )
    return figures
