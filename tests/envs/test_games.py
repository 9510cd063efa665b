"""The Atari 100k game list and name normalisation."""

from __future__ import annotations

import csv
import importlib.resources
import io

import pytest

from hieros_pl.envs.games import ATARI100K_GAMES, canonical_game


def test_games_match_the_packaged_reference_table() -> None:
    resource = importlib.resources.files("hieros_pl").joinpath("resources/atari100k_reference.csv")
    rows = list(csv.DictReader(io.StringIO(resource.read_text(encoding="utf-8"))))
    assert tuple(row["game"] for row in rows) == ATARI100K_GAMES
    assert len(ATARI100K_GAMES) == 26
    assert "UpNDown" in ATARI100K_GAMES
    assert [row["ale_id"] for row in rows] == [f"ALE/{game}-v5" for game in ATARI100K_GAMES]


@pytest.mark.parametrize(
    ("name", "game"),
    [
        ("ms_pacman", "MsPacman"),
        ("MsPacman", "MsPacman"),
        ("mspacman", "MsPacman"),
        ("up_n_down", "UpNDown"),
        ("UpNDown", "UpNDown"),
        ("kung_fu_master", "KungFuMaster"),
        ("pong", "Pong"),
    ],
)
def test_snake_and_camel_names(name: str, game: str) -> None:
    assert canonical_game(name) == game


def test_unknown_game_names_the_key_and_close_matches() -> None:
    with pytest.raises(ValueError, match=r"env\.game 'pongg'.*did you mean \['Pong'\]"):
        canonical_game("pongg")
    with pytest.raises(ValueError, match=r"game 'ms_packman'.*MsPacman"):
        canonical_game("ms_packman", key="game")
