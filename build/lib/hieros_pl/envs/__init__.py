"""Environments: Atari 100k, any gymnasium id, and two small games of our own: catch, navigation."""

from hieros_pl.envs.factory import EnvSpec, env_spec, make_env, to_env_action
from hieros_pl.envs.games import ATARI100K_GAMES, canonical_game

__all__ = ["ATARI100K_GAMES", "EnvSpec", "canonical_game", "env_spec", "make_env", "to_env_action"]
