"""hieros-probe encoder: a fresh copy of the run's encoder learns a reward that o_t shows and
not one it hides, batches come from the training part (half rewarded when balanced), and the CLI
scores a real run with a reading and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from hieros_pl.config import Config
from hieros_pl.errors import ProbeError
from hieros_pl.probes.encoder import (
    FrameRows,
    HeadShape,
    encoder_reading,
    fit_reader,
    frame_rows,
    probe_encoder,
    reward_reader,
)
from hieros_pl.probes.reward import TrainingRows
from hieros_pl.replay.buffer import SequenceBuffer
from tests.conftest import compose
from tests.probes.conftest import hieros_probe

ROWS = 1500


@pytest.fixture(scope="module")
def catch_cfg() -> Config:
    return compose("debug=fast", "hierarchy=depth1", "optim.world_model.lr=1e-3")


def square_rows(visible: bool, reward: float = 1.0) -> FrameRows:
    """16 × 16 frames; a bright 3 × 3 square appears on 10 % of them. Rewarded rows are exactly
    those (``visible``) or an unrelated 10 %."""
    generator = np.random.default_rng(0)
    shown = generator.random(ROWS) < 0.1
    rewarded = shown if visible else generator.random(ROWS) < 0.1
    obs = generator.integers(0, 60, (ROWS, 16, 16, 3), dtype=np.uint8)
    for row in np.flatnonzero(shown):
        y, x = generator.integers(0, 13, 2)
        obs[row, y : y + 3, x : x + 3] = 255
    is_test = np.arange(ROWS) >= int(0.8 * ROWS)
    return FrameRows(obs, (rewarded * reward).astype(np.float32), is_test)


@pytest.mark.parametrize("loss", ["balanced", "bce", "twohot"])
def test_a_fresh_encoder_learns_a_visible_reward_and_not_a_hidden_one(
    catch_cfg: Config, loss: str
) -> None:
    def final_auc(visible: bool) -> float:
        return fit_reader(catch_cfg, square_rows(visible, 5.0), 0, loss, 300, 64, 0, 300)[-1]["auc"]

    visible, hidden = final_auc(True), final_auc(False)
    assert visible > 0.9, visible
    assert 0.35 < hidden < 0.65, hidden


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"shape": HeadShape(layers=-1)}, r"head layers must be >= 0, got -1"),
        ({"shape": HeadShape(output_scale=-0.5)}, r"output_scale must be >= 0, got -0.5"),
        ({"batch_size": 1}, r"batch_size must be >= 2 \(half of it rewarded rows\), got 1"),
        ({"losses": ("mse",)}, r"losses \['mse'\]: choose from"),
    ],
)
def test_probe_encoder_rejects_bad_options_before_reading_the_replay(
    catch_cfg: Config, options: dict[str, Any], error: str
) -> None:
    # buffer=None: the options are checked before the replay is read
    with pytest.raises(ProbeError, match=error):
        probe_encoder(catch_cfg, None, 0, "run", 1, **options)  # type: ignore[arg-type]


def test_every_loss_starts_from_the_same_encoder(catch_cfg: Config) -> None:
    twohot, bce = (reward_reader(catch_cfg, 0, loss, 3) for loss in ("twohot", "bce"))
    for (name, a), b in zip(
        twohot.encoder.state_dict().items(), bce.encoder.state_dict().values(), strict=True
    ):
        assert (a == b).all(), name
    assert twohot.head.out_dim == 255 and bce.head.out_dim == 1


def test_batches_come_from_the_training_part_and_balanced_ones_are_half_rewarded() -> None:
    rows = square_rows(True)
    pools = TrainingRows.of(rows.rewarded, rows.is_test)
    generator = np.random.default_rng(1)
    for balanced in (False, True):
        batch = pools.draw(64, balanced, generator)
        assert len(batch) == 64 and not rows.is_test[batch].any()
    balanced_batch = pools.draw(64, True, generator)
    assert rows.rewarded[balanced_batch].sum() == 32
    natural = np.concatenate([pools.draw(64, False, generator) for _ in range(50)])
    assert 0.05 < rows.rewarded[natural].mean() < 0.15


class TwoStreams:
    """The part of a replay buffer that ``frame_rows`` reads: two streams of 10 rows whose
    rewarded rows are 2 and 7, and 3 and 8."""

    num_envs = 2

    def stream(self, env: int) -> dict[str, np.ndarray]:
        reward = np.zeros(10, np.float32)
        reward[[2, 7] if env == 0 else [3, 8]] = 1.0
        return {"obs": np.arange(10, dtype=np.float32)[:, None] + 100 * env, "reward": reward}


def test_rows_are_split_per_stream_and_a_part_without_rewards_is_an_error() -> None:
    buffer = cast(SequenceBuffer, TwoStreams())
    rows = frame_rows(buffer, 0.2, "run")
    assert rows.obs[rows.is_test, 0].tolist() == [8, 9, 108, 109]
    assert rows.rewarded.tolist() == [i in (2, 7, 13, 18) for i in range(20)]
    with pytest.raises(
        ProbeError, match=r"run: the test part of the replay holds 0 rewarded rows of 2"
    ):
        frame_rows(buffer, 0.1, "run")  # held out: rows 9 and 109, neither rewarded


def test_hieros_probe_encoder_scores_a_real_run(
    trained: tuple[Config, Path], tmp_path: Path
) -> None:
    _, run_dir = trained
    out = tmp_path / "encoder.json"
    arguments = ["--updates", "20", "--loss", "twohot", "bce", "--out", str(out)]
    result = hieros_probe("encoder", str(run_dir), *arguments)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert set(summary["auc"]) == {"twohot", "bce"}
    assert [entry["update"] for entry in summary["history"]["bce"]] == [20]
    assert summary["probe"]["batch_size"] == 8 * 16 and summary["env_steps"] == 150
    assert result.stderr.strip().splitlines()[-1] == encoder_reading(summary["auc"])
    for extra in (["--loss", "bce"], ["--head-layers", "1", "--output-scale", "1"]):
        named = hieros_probe("encoder", str(run_dir), "--updates", "2", *extra)
        assert named.returncode == 0, named.stderr
    written = sorted(path.name for path in (run_dir / "probes").glob("encoder_*.json"))
    assert written == [
        "encoder_level0_2updates_bce.json",
        "encoder_level0_2updates_layers1_outscale1.json",
    ]
    wide = json.loads((run_dir / "probes" / written[1]).read_text())["probe"]
    assert (wide["head_layers"], wide["output_scale"]) == (1, 1.0)
    for option, value, rule in (
        ("--output-scale", "-1", "must be >= 0, got -1"),
        ("--head-layers", "-1", "must be >= 0, got -1"),
        ("--batch-size", "1", "must be >= 2, got 1"),
        ("--test-fraction", "1", "must be in (0, 1), got 1"),
    ):
        wrong = hieros_probe("encoder", str(run_dir), "--updates", "1", option, value)
        assert wrong.returncode == 2 and f"argument {option}: {rule}" in wrong.stderr, wrong.stderr
        assert "Traceback" not in wrong.stderr
    bad = hieros_probe("encoder", str(run_dir), "--updates", "1", "--loss", "mse")
    assert bad.returncode == 2 and "argument --loss: invalid choice: 'mse'" in bad.stderr
