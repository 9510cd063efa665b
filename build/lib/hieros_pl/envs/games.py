"""The 26 Atari 100k games and the mapping from user-typed names to their camel-case names."""

from __future__ import annotations

import difflib

ATARI100K_GAMES: tuple[str, ...] = (
    "Alien",
    "Amidar",
    "Assault",
    "Asterix",
    "BankHeist",
    "BattleZone",
    "Boxing",
    "Breakout",
    "ChopperCommand",
    "CrazyClimber",
    "DemonAttack",
    "Freeway",
    "Frostbite",
    "Gopher",
    "Hero",
    "Jamesbond",
    "Kangaroo",
    "Krull",
    "KungFuMaster",
    "MsPacman",
    "Pong",
    "PrivateEye",
    "Qbert",
    "RoadRunner",
    "Seaquest",
    "UpNDown",
)
"""Camel-case names as in ``ALE/<Game>-v5`` and ``atari100k_reference.csv``, alphabetical.

The original Hieros README lists 25 (UpNDown missing, no reason given); hieros-pl uses all 26.
"""


def _name_key(name: str) -> str:
    # Case, underscores, dashes and spaces carry no meaning: ms_pacman, MsPacman and mspacman match.
    return "".join(char for char in name.lower() if char.isalnum())


def canonical_game(name: str, key: str = "env.game") -> str:
    """Return the camel-case Atari 100k game for ``name`` (snake or camel case, any letter case).

    Raises ValueError naming ``key`` and the closest games when ``name`` is not one of the 26.
    """
    by_key = {_name_key(game): game for game in ATARI100K_GAMES}
    game = by_key.get(_name_key(name))
    if game is not None:
        return game
    close = difflib.get_close_matches(_name_key(name), list(by_key), n=3, cutoff=0.6)
    hint = f"; did you mean {[by_key[match] for match in close]}?" if close else ""
    raise ValueError(
        f"{key} '{name}' is not an Atari 100k game{hint} (valid: {list(ATARI100K_GAMES)})"
    )
