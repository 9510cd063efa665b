"""Every option of every config group composes and validates; bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from hieros_pl.config import GROUP_SCHEMAS, CompatConfig, ConfigError
from tests.conftest import CONF_DIR, compose

GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{group}={option}" for group in GROUPS for option in _options(group)],
)
def test_every_option_composes_and_validates(override: str) -> None:
    group = override.split("=")[0]
    extra = ("env.id=CartPole-v1",) if override == "env=gym" else ()
    cfg = compose(override, *extra, tiny=group not in ("size", "experiment", "debug"))
    assert cfg.env_steps > 0


def test_every_schema_group_has_options_whose_files_use_their_base() -> None:
    for group in GROUP_SCHEMAS:
        for path in (CONF_DIR / group).glob("*.yaml"):
            assert f"base_{group}" in Path(path).read_text(), f"{path} does not extend base_{group}"


def test_compat_original_restores_every_flag_and_fixed_none() -> None:
    original = compose("compat=original").compat
    fixed = compose("compat=fixed").compat
    flags = [name for name in CompatConfig.__dataclass_fields__]
    assert all(getattr(original, name) for name in flags)
    assert not any(getattr(fixed, name) for name in flags)


def test_paper_preset_values() -> None:
    cfg = compose("experiment=atari100k", tiny=False)
    assert (cfg.replay.batch_size, cfg.replay.batch_length) == (16, 64)
    assert cfg.replay.sampler == "etbs" and cfg.replay.temperature == 0.3
    assert cfg.hierarchy.levels == 3 and cfg.hierarchy.stride == 4
    assert cfg.train_ratio == 1024 and cfg.behavior.horizon == 15
    assert cfg.world_model.s5.model_dim == 256 and cfg.world_model.s5.state_dim == 128
    assert cfg.env.kind == "atari100k" and cfg.env.image_size == 64


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("hierarchy.levels=0",), "hierarchy.levels"),
        (("replay.batch_length=64", "replay.capacity=32"), "replay.batch_length"),
        (("replay.temperature=1.5",), "replay.temperature"),
        (("replay.temperature=-0.1",), "replay.temperature"),
        (("replay.sampler=etb",), "replay.sampler"),
        (("world_model.dynamics=s4",), "world_model.dynamics"),
        (("world_model.reward_bins=symsqrt",), "world_model.reward_bins"),
        (("behavior.value_bins=linear",), "behavior.value_bins"),
        (("world_model.s5.state_dim=15",), "world_model.s5.state_dim"),
        (("env.image_size=24",), "env.image_size"),
        (("env=gym",), "env.id"),
        (("env.kind=mujoco",), "env.kind"),
        (("behavior.discount=1.5",), "behavior.discount"),
        (("+reward.weights.curiosity=1.0",), "reward.weights"),
        (("optim.actor.lr=0",), "optim.actor.lr"),
        (("trainer.precision=64",), "trainer.precision"),
        (("env_steps=0",), "env_steps"),
    ],
)
def test_bad_values_name_their_key(overrides: tuple[str, ...], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose(*overrides)


def test_close_match_is_suggested() -> None:
    with pytest.raises(ConfigError, match="did you mean 'etbs'"):
        compose("replay.sampler=etb")


@pytest.mark.parametrize("override", ["replay.temprature=0.3", "replay.temperature=abc"])
def test_unknown_keys_and_wrong_types_fail_at_composition(override: str) -> None:
    with pytest.raises(ConfigCompositionException, match=r"replay\.temp"):
        compose(override)


def test_diff_against_the_paper_preset_lists_changed_keys_only() -> None:
    from hieros_pl.config import config_diff

    preset = compose("experiment=atari100k", tiny=False)
    assert config_diff(preset, preset) == []
    changed = config_diff(compose("experiment=atari100k", "replay=uniform", tiny=False), preset)
    assert changed == ["replay.sampler: 'etbs' -> 'uniform'"]
