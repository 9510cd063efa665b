"""Where a world model loses the reward: three detectors of rewarded steps on held-out replay.

    frames     a small CNN (an MLP for vector obs) on (o_{t-1}, o_t)      is the reward visible?
    features   an MLP on the frozen posterior feature [z_t, h_t] (mode)   does the state carry it?
    head       the world model's own reward head, |E[r̂_t]|               does the head read it out?

Each is scored by the area under the ROC curve (AUC) of "r_t ≠ 0" on the last ``test_fraction``
of every replay stream. The two probes train on the earlier rows, with batches balanced between
rewarded and unrewarded rows; the head is used as trained. Reading: frames ≫ features means the
representation drops the reward; features ≫ head means the head lags the state; frames ≈ 0.5
means two frames do not show it (it needs memory). Rows that start an episode are left out (they
have no o_{t-1}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.functional.classification import binary_auroc

from hieros_pl.errors import ProbeError
from hieros_pl.nn.symlog import symlog
from hieros_pl.replay.buffer import SequenceBuffer
from hieros_pl.world_models.world_model import WorldModel, correlation


@dataclass
class ProbeRows:
    """The rows a probe scores. ``obs`` holds every stored row of every stream, concatenated;
    ``rows`` indexes the scored ones in it (o_{t-1} is ``obs[rows - 1]``)."""

    obs: np.ndarray  # [M, *obs_shape] uint8 | float32
    rows: np.ndarray  # [N] int64, never the first row of a stream or of an episode
    feature: Tensor  # [N, F] float32, the posterior feature at each scored row
    predicted: Tensor  # [N] float32, the reward head's mean
    reward: Tensor  # [N] float32
    is_test: np.ndarray  # [N] bool: the row lies in the last test_fraction of its stream

    @property
    def rewarded(self) -> np.ndarray:
        return (self.reward != 0).numpy()


def collect_rows(
    world_model: WorldModel, buffer: SequenceBuffer, chunk_length: int, test_fraction: float
) -> ProbeRows:
    """Posterior features and reward predictions of every stored row, stream by stream.

    Each stream is observed in consecutive chunks of ``chunk_length`` rows starting from the
    initial state, as the world model sees its training sequences.
    """
    obs, rows, features, predicted, rewards, is_test = [], [], [], [], [], []
    offset = 0
    for env in range(buffer.num_envs):
        stream = buffer.stream(env)
        n = len(stream["reward"])
        if n < 2:
            continue
        feature, prediction = observe_stream(world_model, stream, chunk_length)
        keep = np.flatnonzero(~stream["is_first"][1:]) + 1
        obs.append(stream["obs"])
        rows.append(keep + offset)
        features.append(feature[keep])
        predicted.append(prediction[keep])
        rewards.append(torch.as_tensor(stream["reward"][keep]))
        is_test.append(keep >= test_start(n, test_fraction))
        offset += n
    if not rows:
        raise ProbeError("the replay holds no stream of two or more rows")
    return ProbeRows(
        obs=np.concatenate(obs),
        rows=np.concatenate(rows),
        feature=torch.cat(features),
        predicted=torch.cat(predicted),
        reward=torch.cat(rewards),
        is_test=np.concatenate(is_test),
    )


def test_start(rows: int, test_fraction: float) -> int:
    """First row of a stream's held-out part: its last ``test_fraction`` of ``rows``."""
    return int(np.ceil((1.0 - test_fraction) * rows))


@torch.no_grad()
def observe_stream(
    world_model: WorldModel, stream: dict[str, np.ndarray], chunk_length: int
) -> tuple[Tensor, Tensor]:
    """(posterior feature [n, F], predicted reward [n]) of one stream, in chunks of fresh state;
    the posterior's mode stands for z (no sampling: the same run gives the same features)."""
    # stream: {obs [n, ...], action [n, A], is_first [n]} -> [n, F] float32, [n] float32
    device = next(world_model.parameters()).device
    n = len(stream["is_first"])
    features, predicted = [], []
    for start in range(0, n, chunk_length * 32):
        stop = min(n, start + chunk_length * 32)
        for begin, end in _chunks(start, stop, chunk_length):
            B, T = len(begin), end[0] - begin[0]
            take = (begin[:, None] + np.arange(T)).reshape(-1)
            obs = torch.as_tensor(stream["obs"][take], device=device)
            action = torch.as_tensor(stream["action"][take], device=device)
            is_first = torch.as_tensor(stream["is_first"][take], device=device).reshape(B, T)
            is_first[:, 0] = True
            posterior, _ = world_model.observe(
                obs.reshape(B, T, *obs.shape[1:]), action.reshape(B, T, -1), is_first, sample=False
            )
            feature = posterior.feature()
            features.append(feature.reshape(B * T, -1).float().cpu())
            predicted.append(world_model.reward(feature).reshape(B * T).float().cpu())
    return torch.cat(features), torch.cat(predicted)


def _chunks(start: int, stop: int, length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of equal-length chunks covering [start, stop): the full ones, then the rest."""
    full = (stop - start) // length
    groups = []
    if full:
        begin = start + length * np.arange(full)
        groups.append((begin, begin + length))
    if start + full * length < stop:
        groups.append((np.array([start + full * length]), np.array([stop])))
    return groups


# ----------------------------------------------------------------------------------------------
# detectors


def frame_detector(obs_shape: tuple[int, ...]) -> nn.Module:
    """Scores a pair (o_{t-1}, o_t): conv layers down to 4 × 4 for images, an MLP for vectors."""
    if len(obs_shape) == 1:
        return nn.Sequential(nn.Linear(2 * obs_shape[0], 256), nn.SiLU(), nn.Linear(256, 1))
    height, width, channels = obs_shape
    layers: list[nn.Module] = []
    in_channels, out_channels = 2 * channels, 32
    while max(height, width) > 4:  # each conv (kernel 4, stride 2, padding 1) halves both sides
        layers += [nn.Conv2d(in_channels, out_channels, 4, 2, 1), nn.SiLU()]
        in_channels, out_channels = out_channels, 2 * out_channels
        height, width = height // 2, width // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(in_channels * height * width, 1))


def frame_inputs(obs: np.ndarray, rows: np.ndarray) -> Tensor:
    """(o_{t-1}, o_t) of ``rows`` as one detector input: channels stacked, or vectors joined."""
    # obs: [M, H, W, C] uint8 | [M, O] float32   rows: [n] -> [n, 2C, H, W] | [n, 2O] float32
    previous, current = torch.as_tensor(obs[rows - 1]), torch.as_tensor(obs[rows])
    if previous.dim() == 2:
        return symlog(torch.cat([previous, current], dim=-1).float())
    pair = torch.cat([previous, current], dim=-1).permute(0, 3, 1, 2)
    return pair.float() / 255.0 - 0.5


def feature_detector(feature_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(feature_dim, 256), nn.SiLU(), nn.Linear(256, 1))


@dataclass
class TrainingRows:
    """Index pools of the rows a detector trains on, computed once: every training row, and the
    rewarded and unrewarded ones among them."""

    every: np.ndarray  # [n] int64
    positives: np.ndarray  # [p] int64
    negatives: np.ndarray  # [n - p] int64

    @classmethod
    def of(cls, rewarded: np.ndarray, is_test: np.ndarray) -> TrainingRows:
        # rewarded, is_test: [M] bool
        train = np.flatnonzero(~is_test)
        return cls(train, train[rewarded[train]], train[~rewarded[train]])

    def draw(self, size: int, balanced: bool, generator: np.random.Generator) -> np.ndarray:
        """``size`` row indices: uniform over the training rows, or half rewarded (balanced)."""
        if not balanced:
            return generator.choice(self.every, size)
        half = size // 2
        positives = generator.choice(self.positives, half)
        return np.concatenate([positives, generator.choice(self.negatives, size - half)])


def train_and_score(
    detector: nn.Module,
    inputs: Callable[[np.ndarray], Tensor],
    rows: ProbeRows,
    steps: int,
    batch_size: int,
    seed: int,
) -> float:
    """Train ``detector`` on the training rows (balanced batches); its test AUC."""
    rewarded = rows.rewarded
    pools = TrainingRows.of(rewarded, rows.is_test)
    generator = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(detector.parameters(), lr=3e-4)
    detector.train()
    for _ in range(steps):
        batch = pools.draw(batch_size, True, generator)
        target = torch.as_tensor(rewarded[batch], dtype=torch.float32)
        loss = nn.functional.binary_cross_entropy_with_logits(detector(inputs(batch))[:, 0], target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    detector.eval()
    test = np.flatnonzero(rows.is_test)
    with torch.no_grad():
        scores = torch.cat(
            [detector(inputs(test[i : i + 1024]))[:, 0] for i in range(0, len(test), 1024)]
        )
    return auc(scores, rewarded[test])


def auc(scores: Tensor, rewarded: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the rewarded rows (0.5: no better than chance)."""
    return float(binary_auroc(scores.float(), torch.as_tensor(rewarded, dtype=torch.long)))


def head_means(rows: ProbeRows) -> dict[str, dict[str, float]]:
    """Mean predicted and real reward on the rewarded and the unrewarded test rows: a head can
    rank the rows right (high AUC) and still predict a small fraction of the rewards' size."""
    means = {}
    for name, mask in (("rewarded", rows.rewarded), ("unrewarded", ~rows.rewarded)):
        part = torch.as_tensor(mask & rows.is_test)
        means[name] = {
            "predicted": float(rows.predicted[part].mean()),
            "real": float(rows.reward[part].mean()),
        }
    return means


def check_classes(rewarded: np.ndarray, is_test: np.ndarray, source: str, probe: str) -> None:
    """Both parts need rewarded and unrewarded rows, or no AUC exists."""
    # rewarded, is_test: [M] bool
    for part, mask in (("training", ~is_test), ("test", is_test)):
        count, total = int(rewarded[mask].sum()), int(mask.sum())
        if count == 0 or count == total:
            raise ProbeError(
                f"{source}: the {part} part of the replay holds {count} rewarded rows of {total}; "
                f"the {probe} needs both rewarded (r != 0) and unrewarded rows in each part"
            )


def split_counts(rewarded: np.ndarray, is_test: np.ndarray) -> dict[str, dict[str, Any]]:
    """Rows and rewarded fraction of the training and test parts, for a probe's JSON."""
    # rewarded, is_test: [M] bool
    return {
        "rows": {"train": int((~is_test).sum()), "test": int(is_test.sum())},
        "rewarded_fraction": {
            "train": float(rewarded[~is_test].mean()),
            "test": float(rewarded[is_test].mean()),
        },
    }


def probe_reward(
    world_model: WorldModel,
    buffer: SequenceBuffer,
    source: str,
    chunk_length: int,
    steps: int = 2000,
    batch_size: int = 128,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, Any]:
    """The three AUCs and the head's reward correlation on the test rows, with row counts."""
    if not 0.0 < test_fraction < 1.0:
        raise ProbeError(f"test_fraction must be in (0, 1), got {test_fraction}")
    world_model.eval()
    rows = collect_rows(world_model, buffer, chunk_length, test_fraction)
    check_classes(rows.rewarded, rows.is_test, source, "reward probe")
    torch.manual_seed(seed)
    test = torch.as_tensor(rows.is_test)
    frames = train_and_score(
        frame_detector(rows.obs.shape[1:]),
        lambda batch: frame_inputs(rows.obs, rows.rows[batch]),
        rows,
        steps,
        batch_size,
        seed,
    )
    features = train_and_score(
        feature_detector(rows.feature.shape[1]),
        lambda batch: rows.feature[batch],
        rows,
        steps,
        batch_size,
        seed,
    )
    return {
        "auc": {
            "frames": frames,
            "features": features,
            "head": auc(rows.predicted[test].abs(), rows.rewarded[rows.is_test]),
        },
        "head_reward_corr": float(correlation(rows.predicted[test], rows.reward[test])),
        "head_mean": head_means(rows),
        "feature_dim": int(rows.feature.shape[1]),
        **split_counts(rows.rewarded, rows.is_test),
        "probe": {
            "steps": steps,
            "batch_size": batch_size,
            "test_fraction": test_fraction,
            "seed": seed,
            "chunk_length": chunk_length,
        },
    }
