"""hieros-eval: scores a run dir with the protocol attached; clear errors for missing files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v2 as imageio
import pytest

from hieros_pl.config import Config
from hieros_pl.evaluate import evaluate, main, protocol
from hieros_pl.module import HierosModule
from tests.conftest import compose, tiny_catch_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Path]:
    """One tiny catch run of 60 env steps that the tests below evaluate (read-only)."""
    run_dir = tmp_path_factory.mktemp("trained")
    return tiny_catch_run(run_dir, 60), run_dir


def test_eval_scores_a_trained_run(
    trained: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, run_dir = trained
    shutil.copytree(run_dir, tmp_path, dirs_exist_ok=True)
    capsys.readouterr()  # drop the training progress bar
    main([str(tmp_path), "--episodes", "3", "--mode", "greedy"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 3 and len(summary["returns"]) == 3
    # Catch rewards are +1 or -1 per episode.
    assert all(value in (-1.0, 1.0) for value in summary["returns"])
    assert summary["length_mean"] == cfg.env.grid_size - 1  # the ball lands after G - 1 steps
    assert summary["env_steps"] == 60
    assert summary["protocol"]["policy"] == "greedy"
    assert summary["protocol"]["description"] == (
        "greedy policy, mean of 3 complete episodes on separate eval envs, "
        "after 60 env steps (at the budget)"
    )
    written = tmp_path / "eval" / "hieros-eval_greedy_60.json"
    assert summary["written_to"] == str(written)
    assert json.loads(written.read_text())["returns"] == summary["returns"]


def test_eval_of_a_named_checkpoint_writes_json_and_a_video(
    trained: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, run_dir = trained
    shutil.copytree(run_dir, tmp_path, dirs_exist_ok=True)
    shutil.copy(tmp_path / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "kept.ckpt")
    capsys.readouterr()
    out = tmp_path / "scores.json"
    arguments = ["--checkpoint", "kept.ckpt", "--episodes", "2", "--mode", "sample", "--video"]
    main([str(tmp_path), *arguments, "--out", str(out)])
    summary = json.loads(out.read_text())
    assert summary["checkpoint"] == str(tmp_path / "checkpoints" / "kept.ckpt")
    assert summary["protocol"]["policy"] == "sample" and summary["episodes"] == 2
    frames = imageio.mimread(summary["video"])
    assert len(frames) == cfg.env.grid_size  # G - 1 steps: G observations


def test_missing_checkpoint_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no checkpoint at .*last\.ckpt"):
        main([str(tmp_path / "nowhere")])


def test_atari_protocol_lists_its_conditions() -> None:
    described = protocol(compose("env=atari100k").env, "greedy")
    assert described["sticky_actions"] is False
    assert described["noop_max"] == 30 and described["episode_frames"] == 108_000
    assert described["action_set"] == "minimal"


def test_policy_stats_cover_exactly_the_counted_episode_steps(
    trained: tuple[Config, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, run_dir = trained
    capsys.readouterr()
    out = tmp_path / "scores.json"
    main([str(run_dir), "--episodes", "5", "--mode", "greedy", "--policy-stats", "--out", str(out)])
    summary = json.loads(capsys.readouterr().out)
    policy = summary["policy"]
    # Closing steps and envs past their quota are not counted: one step per episode step.
    assert policy["steps"] == 5 * (cfg.env.grid_size - 1)
    assert sum(policy["action_frequencies"]) == pytest.approx(1.0, abs=1e-3)
    assert len(policy["action_frequencies"]) == 3  # catch: left, stay, right
    assert 0.0 < policy["entropy_fraction_mean"] <= 1.0
    assert 1 <= policy["longest_run_of_one_action"] <= cfg.env.grid_size - 1


def test_policy_stats_of_continuous_actions_are_a_clear_error() -> None:
    cfg = compose("debug=fast", "hierarchy=depth1", "env=gym", "env.id=Pendulum-v1")
    module = HierosModule(cfg, (3,), False, 1, discrete=False)
    with pytest.raises(ValueError, match="policy statistics need discrete actions; env kind 'gym'"):
        evaluate(module, cfg, 1, "greedy", with_policy_stats=True)
