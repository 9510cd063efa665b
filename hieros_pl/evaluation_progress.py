"""A progress bar in evaluation episodes, with ETA, for the final and periodic evaluations."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

NON_INTERACTIVE_INTERVAL_S = 30.0
"""In a non-interactive log (SLURM output file) the bar prints at most this often."""


class EpisodeBar:
    """Counts finished evaluation episodes towards their total; shows the running mean return."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        interactive = sys.stderr.isatty()
        self.bar: tqdm[Any] = tqdm(
            total=total,
            desc=description,
            unit="episode",
            disable=not enabled,
            mininterval=0.5 if interactive else NON_INTERACTIVE_INTERVAL_S,
            leave=False,
            dynamic_ncols=interactive,
        )
        self.returns_sum = 0.0
        self.count = 0

    def on_episode(self, episode_return: float) -> None:
        self.count += 1
        self.returns_sum += episode_return
        self.bar.set_postfix(mean_return=f"{self.returns_sum / self.count:.3g}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()

