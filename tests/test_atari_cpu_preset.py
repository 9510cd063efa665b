"""experiment=atari_cpu keeps the Atari 100k protocol of the paper preset and changes only what a
CPU needs; every key it changes is listed in the README with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hieros_pl.config import config_diff
from tests.conftest import compose

PROTOCOL_KEYS = (
    "env.kind",
    "env.game",
    "env.action_repeat",
    "env.noop_max",
    "env.episode_frames",
    "env.num_envs",
    "env_steps",
    "callbacks.eval_episodes",
    "callbacks.final_eval",
    "callbacks.eval_every",
    "compat.",
)
"""Budget (100k agent steps = 400k frames), action repeat, no-ops, frame cap, one training env,
the evaluation protocol, and the corrected defaults. Sticky actions are off in the Atari wrapper
itself (tests/envs/test_atari.py)."""
README = Path(__file__).resolve().parents[1] / "README.md"


def _changed_keys(game: str, *overrides: str) -> list[str]:
    preset = compose("experiment=atari100k", f"env.game={game}", tiny=False)
    cpu = compose("experiment=atari_cpu", f"env.game={game}", *overrides, tiny=False)
    return [line.split(":")[0] for line in config_diff(cpu, preset)]


@pytest.mark.parametrize("game", ["krull", "ms_pacman"])
def test_protocol_keys_equal_the_paper_preset(game: str) -> None:
    changed = _changed_keys(game)
    assert changed, "the CPU preset must differ somewhere"
    protocol_changes = [key for key in changed if key.startswith(PROTOCOL_KEYS)]
    assert protocol_changes == []
    assert compose("experiment=atari_cpu", tiny=False).env_steps == 100_000


def test_depth3_changes_only_the_hierarchy_size() -> None:
    depth1 = set(_changed_keys("krull"))
    depth3 = set(_changed_keys("krull", "hierarchy=depth3"))
    assert depth1 - depth3 == {"hierarchy.levels"}
    assert depth3 <= depth1


def test_every_changed_key_is_listed_in_the_readme() -> None:
    text = README.read_text()
    section = text[text.index("## Atari on a CPU") :]
    section = section[: section.index("\n## ", 1)]
    missing = [key for key in _changed_keys("krull") if f"`{key}`" not in section]
    assert missing == []
