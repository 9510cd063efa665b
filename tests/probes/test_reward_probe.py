"""hieros-probe reward: the detectors find a reward that is there and only then, the stream is
observed as the world model sees it, and the CLI scores a real run with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hieros_pl.config import Config, ConfigError
from hieros_pl.errors import ProbeError
from hieros_pl.probes.cli import reading
from hieros_pl.probes.refit import refit_config, training_batches
from hieros_pl.probes.reward import (
    ProbeRows,
    check_classes,
    feature_detector,
    frame_detector,
    frame_inputs,
    observe_stream,
    train_and_score,
)
from hieros_pl.world_models.world_model import WorldModel
from tests.conftest import compose
from tests.probes.conftest import hieros_probe

ROWS = 1200


def synthetic_rows(visible: bool, image: bool = True) -> ProbeRows:
    """Rows whose o_t shows a bright 3 × 3 square exactly when rewarded (``visible``), or rows
    whose rewards are unrelated to anything the detector sees."""
    generator = np.random.default_rng(0)
    rewarded = generator.random(ROWS) < 0.1
    shown = rewarded if visible else generator.random(ROWS) < 0.1
    if image:
        obs = generator.integers(0, 60, (ROWS, 16, 16, 3), dtype=np.uint8)
        for row in np.flatnonzero(shown):
            y, x = generator.integers(0, 13, 2)
            obs[row, y : y + 3, x : x + 3] = 255
    else:
        obs = generator.normal(size=(ROWS, 6)).astype(np.float32)
        obs[shown, 0] += 4.0
    rows = np.arange(1, ROWS)
    feature = torch.randn(len(rows), 6)
    feature[:, 0] = torch.as_tensor(shown[rows] * 3.0) + torch.randn(len(rows)) * 0.5
    return ProbeRows(
        obs=obs,
        rows=rows,
        feature=feature,
        predicted=torch.zeros(len(rows)),
        reward=torch.as_tensor(rewarded[rows] * 1.0, dtype=torch.float32),
        is_test=rows >= int(0.8 * ROWS),
    )


def frame_score(rows: ProbeRows) -> float:
    detector = frame_detector(rows.obs.shape[1:])
    return train_and_score(
        detector, lambda batch: frame_inputs(rows.obs, rows.rows[batch]), rows, 300, 64, 0
    )


def feature_score(rows: ProbeRows) -> float:
    detector = feature_detector(rows.feature.shape[1])
    return train_and_score(detector, lambda batch: rows.feature[batch], rows, 300, 64, 0)


@pytest.mark.parametrize("image", [True, False])
def test_frame_detector_finds_a_visible_reward_and_not_an_invisible_one(image: bool) -> None:
    visible, invisible = (frame_score(synthetic_rows(shown, image)) for shown in (True, False))
    assert visible > 0.9, visible
    assert 0.35 < invisible < 0.65, invisible


def test_feature_detector_finds_a_carried_reward_and_not_a_missing_one() -> None:
    carried, missing = (feature_score(synthetic_rows(shown)) for shown in (True, False))
    assert carried > 0.9, carried
    assert 0.35 < missing < 0.65, missing


@pytest.mark.parametrize("shape", [(16, 16, 3), (32, 24, 1), (84, 84, 4), (5,)])
def test_frame_detector_scores_a_batch_of_pairs_of_any_frame_shape(shape: tuple[int, ...]) -> None:
    obs = np.zeros((6, *shape), dtype=np.uint8 if len(shape) == 3 else np.float32)
    assert frame_detector(shape)(frame_inputs(obs, np.arange(1, 6))).shape == (5, 1)


def test_frame_inputs_pair_the_previous_and_current_observation() -> None:
    obs = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    pair = frame_inputs(obs, np.array([1, 3]))
    assert pair.shape == (2, 6, 2, 2) and pair.dtype == torch.float32
    expected = torch.as_tensor(obs[2]).permute(2, 0, 1).float() / 255.0 - 0.5
    assert torch.equal(pair[1, :3], expected)


@pytest.mark.parametrize(
    ("frames", "features", "head", "where"),
    [
        (0.55, 0.5, 0.5, "two frames barely show"),
        (0.95, 0.7, 0.65, "state drops"),
        (0.95, 0.7, 0.93, "reward head reads"),  # the head reads the state better than a probe
        (0.95, 0.93, 0.7, "head does not read"),
        (0.95, 0.92, 0.91, "reward head reads"),
    ],
)
def test_the_reading_names_where_the_reward_is_lost(
    frames: float, features: float, head: float, where: str
) -> None:
    assert where in reading({"frames": frames, "features": features, "head": head})


def test_a_replay_without_rewards_in_a_part_is_a_clear_error() -> None:
    rows = synthetic_rows(True)
    rows.reward[torch.as_tensor(rows.is_test)] = 0.0
    with pytest.raises(ProbeError, match=r"runs/x: the test part .* holds 0 rewarded rows of 240"):
        check_classes(rows.rewarded, rows.is_test, "runs/x", "reward probe")


def test_a_stream_is_observed_in_fresh_chunks_like_training_sequences() -> None:
    cfg = compose("debug=fast", "hierarchy=depth1")
    torch.manual_seed(0)
    model = WorldModel(cfg.world_model, (16, 16, 3), True, 3).eval()
    n, T = 37, 16  # two full chunks and a remainder of 5
    generator = np.random.default_rng(0)
    stream = {
        "obs": generator.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
        "action": np.eye(3, dtype=np.float32)[generator.integers(0, 3, n)],
        "is_first": np.arange(n) % 11 == 0,
    }
    feature, predicted = observe_stream(model, stream, T)
    assert feature.shape[0] == n and predicted.shape == (n,)
    with torch.no_grad():
        for start in (0, 16, 32):
            stop = min(n, start + T)
            is_first = torch.as_tensor(stream["is_first"][start:stop])[None].clone()
            is_first[0, 0] = True
            posterior, _ = model.observe(
                torch.as_tensor(stream["obs"][start:stop])[None],
                torch.as_tensor(stream["action"][start:stop])[None],
                is_first,
                sample=False,
            )
            expected = posterior.feature()[0]
            torch.testing.assert_close(feature[start:stop], expected)
            torch.testing.assert_close(predicted[start:stop], model.reward(expected))


def test_hieros_probe_scores_a_real_run(trained: tuple[Config, Path], tmp_path: Path) -> None:
    _, run_dir = trained
    out = tmp_path / "probe.json"
    result = hieros_probe("reward", str(run_dir), "--steps", "40", "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["env_steps"] == 150 and summary["level"] == 0
    assert set(summary["auc"]) == {"frames", "features", "head"}
    assert all(0.0 <= value <= 1.0 for value in summary["auc"].values())
    # Every stored row but each stream's and each episode's first (no o_{t-1}).
    from hieros_pl.builders import load_replay
    from hieros_pl.evaluate import checkpoint_path, load_run

    checkpoint = checkpoint_path(run_dir)
    stream = load_replay(*load_run(checkpoint), checkpoint).buffers[0].stream(0)
    scored = ~stream["is_first"]
    scored[0] = False
    assert summary["rows"]["train"] + summary["rows"]["test"] == scored.sum()
    assert summary["rows"]["test"] == pytest.approx(0.2 * scored.sum(), abs=2)
    rewarded = (stream["reward"] != 0)[scored]
    assert 0 < rewarded.mean() < 0.5  # catch pays +1 or -1 on the last row of an episode only
    fractions = summary["rewarded_fraction"]
    total = (
        summary["rows"]["train"] * fractions["train"] + summary["rows"]["test"] * fractions["test"]
    )
    assert total == pytest.approx(rewarded.sum())
    test_rows = scored & (np.arange(len(scored)) >= np.ceil(0.8 * len(scored)))
    test_rewards = stream["reward"][test_rows]
    means = summary["head_mean"]
    assert means["unrewarded"]["real"] == 0.0
    assert means["rewarded"]["real"] == pytest.approx(test_rewards[test_rewards != 0].mean())
    assert json.loads(result.stdout)["written_to"] == str(out)
    assert result.stderr.strip().splitlines()[-1] == reading(summary["auc"])


def test_hieros_probe_errors_name_the_file_and_the_level(
    trained: tuple[Config, Path], tmp_path: Path
) -> None:
    missing = hieros_probe("reward", str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "no checkpoint at" in missing.stderr
    assert "Traceback" not in missing.stderr
    _, run_dir = trained
    for command, option in (
        ("reward", "--steps"),
        ("refit", "--updates"),
        ("encoder", "--updates"),
    ):
        zero = hieros_probe(command, str(run_dir), option, "0")
        assert zero.returncode == 2 and f"argument {option}: must be >= 1, got 0" in zero.stderr
    level = hieros_probe("reward", str(run_dir), "--level", "2", "--steps", "1")
    assert level.returncode == 1, level.stderr
    assert level.stderr.strip() == "hieros-probe: --level 2: the run has levels 0-0"


def test_refit_batches_come_from_the_training_part_only() -> None:
    from tests.replay.test_buffer import fill, make_buffer

    buffer = make_buffer(compose("replay=uniform").replay, num_envs=2, capacity=60, batch_length=5)
    masks = np.ones((50, 2), dtype=bool)
    masks[:20, 1] = False  # env 1 holds 30 rows: training part 24, env 0: 40
    fill(buffer, masks)
    batches = training_batches(buffer, 64, 0.2, seed=0)
    starts = {0: set(), 1: set()}
    for _ in range(20):
        batch = next(batches)
        assert batch.reward.shape == (64, 5) and bool(batch.is_first[:, 0].all())
        env = batch.obs[:, 0, 0].long()  # counter rows carry their env in obs[..., 0]
        counter = batch.reward.long()
        assert torch.equal(counter[:, 1:] - counter[:, :-1], torch.ones(64, 4, dtype=torch.long))
        for e in (0, 1):
            starts[e] |= set(counter[env == e, 0].tolist())
    assert starts[0] == set(range(36)) and starts[1] == set(range(20))


def test_refit_takes_only_world_model_overrides(trained: tuple[Config, Path]) -> None:
    cfg, _ = trained
    assert refit_config(cfg, ["world_model.stoch=4"]).world_model.stoch == 4
    with pytest.raises(ConfigError, match=r"refit override 'env.game=pong': only key=value"):
        refit_config(cfg, ["env.game=pong"])


def test_hieros_probe_refit_trains_a_fresh_world_model(
    trained: tuple[Config, Path], tmp_path: Path
) -> None:
    cfg, run_dir = trained
    out = tmp_path / "refit.json"
    # Overrides before and after the options, as a researcher types them.
    arguments = ["world_model.stoch=4", "--updates", "20", "optim.world_model.lr=5e-4"]
    arguments += ["--steps", "20", "--out", str(out)]
    result = hieros_probe("refit", str(run_dir), *arguments)
    assert result.returncode == 0, result.stderr
    summary = json.loads(out.read_text())
    assert summary["overrides"] == ["world_model.stoch=4", "optim.world_model.lr=5e-4"]
    assert summary["updates"] == 20
    assert [entry["update"] for entry in summary["history"]] == [20]
    assert {"decoder", "reward", "reward_corr"} <= set(summary["history"][0])
    wm = cfg.world_model
    assert summary["feature_dim"] == wm.deter + 4 * wm.classes != wm.deter + wm.stoch * wm.classes
    assert all(0.0 <= value <= 1.0 for value in summary["auc"].values())
    bad = hieros_probe("refit", str(run_dir), "env.game=pong", "--updates", "1")
    assert bad.returncode == 2 and "refit override 'env.game=pong'" in bad.stderr
    unknown = hieros_probe(
        "refit", str(run_dir), "--updates", "1", "--bogus", "world_model.stoch=4"
    )
    assert unknown.returncode == 2 and "unrecognized arguments: --bogus" in unknown.stderr
