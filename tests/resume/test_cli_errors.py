"""Bad input stopped at the door: the real CLI exits != 0 with one line and writes nothing."""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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


NOBODY = 65534
"""uid and gid of the unprivileged user (``nobody``) that runs hieros-train when tests run as root;
root itself may read and write any directory."""


def _runnable_by_anyone(path: Path) -> bool:
    """Whether every user may execute ``path`` (o+x on it and on every directory above it)."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _interpreter_for_anyone() -> Path | None:
    """A CPython of this minor version that an unprivileged user may execute, if any."""
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    on_path = shutil.which(name)
    candidates = [Path(sys.executable).resolve(), Path("/usr/bin") / name]
    candidates += [Path("/usr/local/bin") / name, *([Path(on_path).resolve()] if on_path else [])]
    return next((path for path in candidates if path.is_file() and _runnable_by_anyone(path)), None)


def _venv_for_anyone(directory: Path) -> Path | None:
    """A venv in ``directory`` that any user can run and that imports this venv's packages.

    A ``.pth`` file adds this venv's site-packages with ``site.addsitedir``, so its own ``.pth``
    files (the editable install of hieros-pl) apply too. None if no such venv can be made.
    """
    interpreter = _interpreter_for_anyone()
    if interpreter is None:
        return None
    made = subprocess.run(
        [str(interpreter), "-m", "venv", "--without-pip", str(directory)], capture_output=True
    )
    if made.returncode != 0:
        return None
    packages = next(directory.glob("lib/python*/site-packages"))
    lines = [f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()]
    (packages / "hieros_pl_checkout.pth").write_text("".join(lines))
    return directory / "bin" / "python"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A temporary directory every user may enter (pytest's tmp_path is private to its user)."""
    directory = Path(tempfile.mkdtemp(prefix="hieros-pl-unreadable-"))
    directory.chmod(0o755)
    yield directory
    for path in directory.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(directory)


def _files_and_times(directories: list[Path]) -> dict[str, int]:
    return {
        str(path): path.stat().st_mtime_ns
        for root in directories
        for path in [root, *root.rglob("*")]
    }


def _as_unprivileged_user(shared_dir: Path, home: Path) -> tuple[Path, dict[str, Any]]:
    """(python, Popen keywords) for a process that file modes bind, with ``home`` its own.

    As root: uid ``nobody`` through a venv in ``shared_dir`` that it can execute (root ignores
    file modes); otherwise this user and this interpreter. Skips the test if neither is possible.
    """
    if os.geteuid() != 0:
        return Path(sys.executable), {}
    python = _venv_for_anyone(shared_dir / "venv")
    if python is None:
        pytest.skip(
            f"tests run as root and no python{sys.version_info.major}.{sys.version_info.minor} "
            f"that uid {NOBODY} may execute was found to run hieros-train without root's rights"
        )
    os.chown(home, NOBODY, NOBODY)
    return python, {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def test_a_run_dir_this_user_cannot_use_ends_with_one_line_naming_it(shared_dir: Path) -> None:
    """A run dir the user may not read or write, and one inside a directory it may not enter."""
    home, unreadable, hidden = (shared_dir / name for name in ("home", "unreadable", "hidden"))
    for directory in (home, unreadable, hidden):
        directory.mkdir()
    (unreadable / "config.yaml").write_text("seed: 0\n")
    python, user = _as_unprivileged_user(shared_dir, home)
    before = _files_and_times([unreadable, hidden])
    for directory in (unreadable, hidden):
        directory.chmod(0o700 if user else 0o000)  # root owns them when the user is nobody
    cases = {
        unreadable: f"run dir {unreadable} is not readable and writable by this user",
        hidden / "run": (
            f"run dir {hidden / 'run'} cannot be created or entered: {hidden} is not a directory "
            "this user can write and search"
        ),
    }
    env = {**ENV, "HOME": str(home), "TMPDIR": str(home), "WANDB_DIR": str(home)}
    processes = {
        run_dir: subprocess.Popen(
            [str(python), "-m", "hieros_pl.train", *BASE, f"hydra.run.dir={run_dir}"],
            env=env,
            cwd=home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            **user,
        )
        for run_dir in cases
    }
    for run_dir, expected in cases.items():
        _, stderr = processes[run_dir].communicate(timeout=300)
        assert processes[run_dir].returncode not in (0, None), stderr[-2000:]
        assert stderr.strip().splitlines() == [f"hieros-train: {expected}"], stderr[-2000:]
    for directory in (unreadable, hidden):
        directory.chmod(0o755)
    assert _files_and_times([unreadable, hidden]) == before  # nothing written
