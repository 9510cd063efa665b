"""Bad input stopped at the door: the real CLI exits != 0 with one line and writes nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

BASE = ("size=tiny", "env=catch", "logger=csv", "debug=fast")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "offline"}
ENV.pop("HYDRA_FULL_ERROR", None)


def test_bad_inputs_end_with_one_line_naming_the_culprit(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    (corrupt / "checkpoints").mkdir(parents=True)
    checkpoint = corrupt / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {"env_steps": torch.tensor(1), "w": torch.zeros(500)}}, checkpoint)
    checkpoint.write_bytes(checkpoint.read_bytes()[:-200])
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    cases: dict[str, tuple[list[str], str]] = {
        "plus_key": (["+bogus_key=1"], "invalid config: unknown key 'bogus_key'"),
        "ckpt_path": (["+ckpt_path=/x/last.ckpt"], "unknown key 'ckpt_path'"),
        "typo": (
            ["replay.tempreature=0.1"],
            "unknown key 'replay.tempreature'; closest valid keys: replay.temperature",
        ),
        "group": (["env=nope"], "no config 'env/nope'; available options for 'env': atari100k"),
        "value": (["replay.temperature=2.0"], "replay.temperature must be in [0, 1], got 2.0"),
        "type": (["seed=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
        "env_id": (
            ["env=gym", "env.id=CartPol-v1"],
            "env.id 'CartPol-v1' is not a registered gymnasium id; did you mean ['CartPole-v1'",
        ),
        "space": (["env=gym", "env.id=Blackjack-v1"], "env.id 'Blackjack-v1': observation space"),
        "checkpoint": ([], f"checkpoint {checkpoint} is truncated or corrupt"),
        "run_dir": ([f"run_dir={a_file}"], f"run dir {a_file} is not a directory"),
    }
    if importlib.util.find_spec("Box2D") is None:
        cases["dependency"] = (["env=gym", "env.id=CarRacing-v3"], 'pip install "gymnasium[box2d]"')
    processes = {}
    for name, (overrides, _) in cases.items():
        run_dir = corrupt if name == "checkpoint" else tmp_path / name
        command = [sys.executable, "-m", "hieros_pl.train", *BASE, *overrides]
        command.append(f"hydra.run.dir={run_dir}")
        processes[name] = subprocess.Popen(
            command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    for name, (_, expected) in cases.items():
        _, stderr = processes[name].communicate(timeout=300)
        assert processes[name].returncode not in (0, None), name
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hieros-train: "), (name, stderr)
        assert expected in lines[0], (name, lines[0])
        if name != "checkpoint":
            written = [p for p in (tmp_path / name).rglob("*")] if name != "run_dir" else []
            assert written == [], (name, written)
    assert sorted(p.name for p in corrupt.rglob("*")) == ["checkpoints", "last.ckpt"]


def test_hydra_full_error_still_shows_the_traceback(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "hieros_pl.train", *BASE, "+bogus_key=1"]
    result = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path}"],
        env={**ENV, "HYDRA_FULL_ERROR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "unknown key 'bogus_key'" in result.stderr


def test_hieros_eval_refuses_a_checkpoint_whose_pickle_would_run_code(tmp_path: Path) -> None:
    from hieros_pl.builders import save_run_config
    from tests.conftest import compose
    from tests.resume.test_guards import _RunsCode

    save_run_config(compose(f"run_dir={tmp_path}"), tmp_path)
    marker = tmp_path / "code_ran"
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    torch.save({"state_dict": {}, "x": _RunsCode(marker)}, checkpoint)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hieros-eval"), str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0 and not marker.exists()
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"hieros-eval: refusing checkpoint {checkpoint}"), result.stderr


POISON = """
from hieros_pl.world_models.world_model import WorldModel

_original = WorldModel.loss


def _poisoned(self, batch):
    losses, posterior, metrics = _original(self, batch)
    losses["reward"] = losses["reward"] * float("nan")
    return losses, posterior, metrics


WorldModel.loss = _poisoned
"""


def test_a_non_finite_loss_ends_the_cli_with_one_line_naming_level_and_term(
    tmp_path: Path,
) -> None:
    # A sitecustomize module on PYTHONPATH poisons the reward loss inside the real CLI process.
    patches = tmp_path / "patches"
    patches.mkdir()
    (patches / "sitecustomize.py").write_text(POISON)
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(patches), *sys.path])}
    command = [sys.executable, "-m", "hieros_pl.train", *BASE, "hierarchy=depth1"]
    result = subprocess.run(
        [*command, "env_steps=100", f"hydra.run.dir={tmp_path / 'run'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode not in (0, None)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hieros-train: "), result.stderr[-2000:]
    assert "level 0: wm/reward" in lines[0]
