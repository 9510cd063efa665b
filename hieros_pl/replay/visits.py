"""How often a replay revisited its sequences, by age: from a run's checkpoint, and simulated
for any sampler over the same growth (ETBS against uniform, ALGORITHM.md §6).

A sequence's visits are the batches that drew it. Uniform sampling over-visits old sequences
(each is a candidate for every later draw); ETBS shifts draws towards newer sequences.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hieros_pl.config import ReplayConfig
from hieros_pl.replay.samplers import make_sampler


def run_visits(run_dir: str | Path, level: int = 0) -> np.ndarray:
    """[N] visits of level ``level``'s live sequences in a run's last checkpoint, oldest first."""
    from hieros_pl.callbacks.checkpoint import load_checkpoint

    checkpoint = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}")
    # Digest checked, weights only: reading a run's replay statistics never executes its file.
    state = load_checkpoint(checkpoint, mmap=True)
    buffers = state["ReplayDataModule"]["buffers"]
    if not 0 <= level < len(buffers):
        raise ValueError(f"level {level} not in the run's {len(buffers)} replay levels")
    return buffers[level]["keys"]["visits"].numpy().astype(np.int64)


def simulate_visits(cfg: ReplayConfig, sequences: int, draws: int, seed: int = 0) -> np.ndarray:
    """[sequences] visits, oldest first, after a replay grew one sequence at a time to
    ``sequences`` while ``cfg``'s sampler drew ``draws`` indices in all, spread evenly over
    the growth in batches of ``cfg.batch_size`` (drawing starts with the first sequence)."""
    sampler = make_sampler(cfg)
    rng = np.random.default_rng(seed)
    visits = np.zeros(sequences, dtype=np.int64)
    per_sequence = draws / sequences
    owed = 0.0
    for size in range(1, sequences + 1):
        owed += per_sequence
        while owed >= cfg.batch_size:
            chosen = sampler.indices(rng, visits[:size], cfg.batch_size)
            np.add.at(visits, chosen, 1)
            owed -= cfg.batch_size
    return visits


def age_histogram(visits: np.ndarray, bins: int = 10) -> np.ndarray:
    """[bins] mean visits of each age bin (0 = oldest) divided by the overall mean visits."""
    # visits: [N] int64 -> [bins] float64
    groups = np.array_split(visits.astype(np.float64), bins)
    return np.array([group.mean() for group in groups]) / max(visits.mean(), 1e-12)


def sampler_comparison(cfg: ReplayConfig, visits: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Age histograms of a run's ``visits`` and of ETBS (the run's τ, or 0.3 when the run was
    not ETBS) and uniform sampling simulated over the same number of sequences and draws."""
    sequences, draws = len(visits), int(visits.sum())
    temperature = cfg.temperature if cfg.sampler == "etbs" else 0.3
    etbs = replace(cfg, sampler="etbs", temperature=temperature)
    uniform = replace(cfg, sampler="uniform")
    return {
        f"this run ({cfg.sampler})": age_histogram(visits),
        f"etbs τ={temperature} (simulated)": age_histogram(
            simulate_visits(etbs, sequences, draws, seed)
        ),
        "uniform (simulated)": age_histogram(simulate_visits(uniform, sequences, draws, seed)),
    }


def save_age_histograms(histograms: dict[str, np.ndarray], path: Path) -> Path:
    """A bar chart of the histograms side by side, saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(histograms)
    for index, (name, histogram) in enumerate(histograms.items()):
        positions = np.arange(len(histogram)) + index * width
        axis.bar(positions, histogram, width=width, label=name)
    axis.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axis.set(xlabel="age decile (0 = oldest)", ylabel="visits / mean visits")
    axis.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
