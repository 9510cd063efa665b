"""Typed configuration schema: one dataclass per config group, registered in Hydra's ConfigStore.

Every option file in ``conf/<group>/`` starts with ``defaults: [base_<group>, _self_]``, so an
unknown key or a wrong type fails at composition. Cross-field constraints are checked once by
:func:`validate` right after composition; each error names the full key.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


# ----------------------------------------------------------------------------------------------
# env


@dataclass
class EnvConfig:
    """Which environment to train on and how it is wrapped."""

    kind: str = "atari100k"
    """Environment family: atari100k | gym | catch | navigation."""
    game: str = "pong"
    """atari100k: game name, snake or camel case (``ms_pacman`` or ``MsPacman``)."""
    id: str = ""
    """gym: any registered gymnasium id, e.g. ``CartPole-v1``."""
    num_envs: int = 1
    """E: parallel training environments (paper: 1)."""
    action_repeat: int = 4
    """Emulator frames per agent step for atari100k (paper: 4). Other kinds: 1."""
    image_size: int = 64
    """Himg = Wimg of image observations after resizing (paper: 64)."""
    noop_max: int = 30
    """atari100k: reset applies U{0, ..., noop_max-1} single-frame no-ops (paper: 30)."""
    episode_frames: int = 108_000
    """atari100k: episode cap in emulator frames (original effective value 108,000)."""
    max_episode_steps: int = 0
    """gym/catch/navigation: agent-step episode cap; 0 keeps the environment's own limit."""
    vector_obs: bool = False
    """catch/navigation: vector instead of image observations."""
    grid_size: int = 8
    """catch/navigation: cells per side of the game board."""
    eval_num_envs: int = 16
    """Separate evaluation environments acting as one batch (seeded with a disjoint offset);
    capped by the episodes, each env plays a share fixed in advance. 16 measured fastest of
    1/8/16 (`hieros-bench evaluation`: 47 vs 9 Pong episodes/min at the paper size)."""


# ----------------------------------------------------------------------------------------------
# world model


@dataclass
class S5Config:
    """S5 sequence model of the S5WM dynamics (ALGORITHM.md §3.4-3.6)."""

    model_dim: int = 256
    """D: width of the S5 stack (paper: 256)."""
    state_dim: int = 128
    """P: complex state size per SSM (paper: 128)."""
    init_blocks: int = 4
    """J: HiPPO initialisation blocks per SSM (paper: 4)."""
    num_blocks: int = 4
    """N_b: double-S5 blocks in the stack (paper: 4)."""
    dropout: float = 0.1
    """Dropout in each block, training pass only (paper-era 0.1; latest code 0.0)."""
    activation: str = "gelu"
    """Activation after W1/W2 in a block: gelu | silu (original runs GELU)."""
    state_as_deter: bool = True
    """h from the real S5 states (true, paper) or from the output path (ablation)."""
    scan: str = "auto"
    """Training-time scan: parallel | sequential | auto (chosen by measurement)."""


@dataclass
class RSSMConfig:
    """DreamerV3 GRU dynamics for the ``world_model=rssm`` ablation (ALGORITHM.md §3.8)."""

    hidden: int = 256
    """Width of the GRU input and image layers (paper: 256)."""


@dataclass
class WorldModelConfig:
    """World model of one level: encoder, dynamics, heads and losses (ALGORITHM.md §3)."""

    dynamics: str = "s5wm"
    """Dynamics: s5wm | rssm."""
    stoch: int = 32
    """S: categorical latents (paper: 32)."""
    classes: int = 32
    """Z: classes per latent (paper: 32)."""
    deter: int = 256
    """h: deterministic feature size (paper: 256)."""
    hidden: int = 256
    """Width of the posterior/prior/input layers (paper: 256)."""
    stochastic: bool = True
    """Sampled categorical latents (true) or deterministic logits (no_stoch ablation)."""
    unimix: float = 0.01
    """Uniform mixture on latent categoricals (paper: 0.01)."""
    cnn_depth: int = 24
    """Channels of the first conv layer, doubled per layer (paper: 24)."""
    cnn_minres: int = 4
    """Spatial size where the conv encoder stops (paper: 4)."""
    mlp_layers: int = 2
    """Hidden layers of MLP encoders/decoders (paper: 2)."""
    mlp_units: int = 512
    """Width of MLP encoders/decoders (paper-era 512; latest code 1024)."""
    head_layers: int = 2
    """Hidden layers of the reward and continue heads (paper: 2)."""
    head_units: int = 256
    """Width of the reward and continue heads (paper: 256)."""
    reward_output_scale: float = 0.0
    """Initial scale of the reward head's output layer: uniform in ±√(3·scale/fan_avg) (paper:
    0, an all-zero layer, ALGORITHM.md §7.2). See README "Where the reward is lost" for what the
    zero start does to rare rewards."""
    reward_bins: str = "symlog"
    """Reward head's two-hot bins: symlog (paper: symexp of the symlog-space mean) | symexp
    (DreamerV3's later symexp_twohot: raw-unit bins, the expected reward)."""
    free_nats: float = 1.0
    """KL free bits per (b, t) after summing over latents (paper: 1.0)."""
    loss_scales: dict[str, float] = field(
        default_factory=lambda: {
            "decoder": 1.0,
            "reward": 1.0,
            "continue": 1.0,
            "dyn": 0.5,
            "rep": 0.1,
        }
    )
    """Weight of each world-model loss term (paper: 1, 1, 1, 0.5, 0.1)."""
    s5: S5Config = field(default_factory=S5Config)
    """S5 stack settings (used by dynamics=s5wm)."""
    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    """GRU settings (used by dynamics=rssm)."""


# ----------------------------------------------------------------------------------------------
# behaviour


@dataclass
class BehaviorConfig:
    """Imagination actor-critic (ALGORITHM.md §4)."""

    horizon: int = 15
    """H: imagined transitions per rollout, in level steps (original imag_horizon 16 = H+1)."""
    discount: float = 0.997
    """γ per step of the level (paper: 0.997)."""
    discount_lambda: float = 0.95
    """λ of the λ-returns (paper: 0.95)."""
    actor_entropy: float = 3e-4
    """η: entropy bonus coefficient (paper: 3e-4)."""
    action_unimix: float = 0.01
    """Uniform mixture on categorical actions and subgoals (paper: 0.01)."""
    imag_gradient: str = "reinforce"
    """Actor gradient: reinforce | dynamics | both (Atari: reinforce)."""
    imag_gradient_mix: float = 0.0
    """Weight of the dynamics gradient when imag_gradient=both (paper: 0.0)."""
    layers: int = 2
    """Hidden layers of the actor and critics (paper: 2)."""
    units: int = 256
    """Width of the actor and critics (paper: 256)."""
    value_bins: str = "symlog"
    """Critics' two-hot bins: symlog (paper) | symexp (raw-unit bins, the expected value)."""
    slow_critic_fraction: float = 0.02
    """EMA rate of the slow critics per behaviour step (paper: 0.02)."""
    return_norm_rate: float = 0.01
    """EMA rate of the 5th/95th return percentiles (paper: 0.01)."""
    actor_min_std: float = 0.1
    """Continuous actions: lower bound of the action std."""
    actor_max_std: float = 1.0
    """Continuous actions: upper bound of the action std."""


# ----------------------------------------------------------------------------------------------
# hierarchy, rewards


@dataclass
class HierarchyConfig:
    """Levels, timing and subgoals (ALGORITHM.md §5)."""

    levels: int = 3
    """L: hierarchy levels (original max_hierarchy; paper: 3)."""
    stride: int = 4
    """K: steps of level i per step of level i+1 (paper: 4)."""
    activate_every: int = 1
    """Level i becomes active at env step i·activate_every (original add_hierarchy_every: 1)."""
    subgoal_groups: int = 8
    """G: categoricals of a subgoal code (paper: 8)."""
    subgoal_classes: int = 8
    """V: classes per subgoal categorical (paper: 8)."""
    upward_latent_lag: bool = True
    """Pass the lower level's latent of the previous step upward (original method, D10)."""
    stack_lower_latents: bool = True
    """Observe the last K lower latents (true) or only the newest (no_intermediate)."""
    decompress_subgoal_input: bool = False
    """Feed the decoded 256-dim subgoal instead of the 64-dim code to actor and critics."""
    subgoal_ae_layers: int = 3
    """Hidden layers of the subgoal autoencoder encoder and decoder (paper: 3)."""
    subgoal_ae_kl_scale: float = 0.5
    """Weight of the KL-to-uniform term of the subgoal autoencoder (paper: 0.5)."""
    shared_world_model: bool = False
    """Levels above 0 own no world model and imagine through level 0's (README, Implementation
    details; original hierarchical_world_models: False)."""
    reach_threshold: float = 0.9
    """Cosine between symlog(h) and g̃ at or above which a subgoal counts as reached (diagnostic)."""


@dataclass
class RewardConfig:
    """Reward components and their weights (ALGORITHM.md §4.3, §5.7-5.9)."""

    weights: dict[str, float] = field(
        default_factory=lambda: {"extrinsic": 1.0, "subgoal": 0.3, "novelty": 0.1}
    )
    """w_j per component (paper: extrinsic 1.0, subgoal 0.3, novelty 0.1)."""
    novelty_only_higher_levels: bool = True
    """Remove the novelty component from level 0 (paper sweep: true)."""
    novelty_top_only: bool = False
    """Keep novelty only at the top level (ablation)."""
    extrinsic_top_only: bool = False
    """Extrinsic reward only at the top level (original only_subgoal_reward intent)."""
    subgoal_symlog: bool = True
    """symlog the subgoal reward (paper: true)."""
    novelty_symlog: bool = True
    """symlog the novelty reward (paper: true)."""


# ----------------------------------------------------------------------------------------------
# replay


@dataclass
class ReplayConfig:
    """Per-level replay buffer and sampler (ALGORITHM.md §6)."""

    sampler: str = "etbs"
    """Sampler: etbs | uniform | time_balanced."""
    capacity: int = 1_000_000
    """Stored steps per level and environment stream (paper: 1e6)."""
    batch_size: int = 16
    """B: sequences per batch (paper: 16)."""
    batch_length: int = 64
    """T: steps per sequence (paper: 64)."""
    temperature: float = 0.3
    """τ of ETBS in [0, 1]: 0 uniform, 1 fully time-balanced (paper sweep: 0.3)."""
    visit_temperature: float = 20.0
    """time_balanced: draw with probability softmax(-visits / visit_temperature) (original: 20)."""
    chunk_size: int = 1024
    """Steps per chunk file written to the run dir."""


# ----------------------------------------------------------------------------------------------
# compat


@dataclass
class CompatConfig:
    """Restore each documented defect of the original code (ALGORITHM.md §12); all false = fixed."""

    action_alignment_original: bool = False
    """D1: world model trains on row t's action instead of row t-1's."""
    lambda_return_original: bool = False
    """D2: λ-return with the current state's reward and continue."""
    reinforce_advantage_original: bool = False
    """D3: REINFORCE advantages divided by Σw instead of normalised by the return scale."""
    etbs_scaling_original: bool = False
    """D4: ETBS scaled by replay capacity instead of the current number of sequences."""
    terminal_reward_original: bool = False
    """D5: reward of the final step of an episode dropped."""
    novelty_space_original: bool = False
    """D6: novelty compares raw h with the reconstruction of symlog(h)."""
    subgoal_ae_output_original: bool = False
    """D7: subgoal autoencoder without linear output layers."""
    eval_subgoal_original: bool = False
    """D8: probability vectors instead of one-hot subgoals at evaluation."""
    higher_level_episodes_original: bool = False
    """D9: global acting grid, zeroed state at episode end, FIFOs kept across episodes."""
    weight_decay_original: bool = False
    """D11: AdamW decoupled weight decay 0.01 on every optimiser."""
    seeding_original: bool = False
    """D12: no seeding at all."""
    policy_exceptions_original: bool = False
    """D13: exceptions in the policy are caught and counted; the previous action repeats."""
    eval_protocol_original: bool = False
    """D14: one mid-run evaluation that shares runtime state with training."""
    terminal_flag_original: bool = False
    """D15: episode truncation flagged as terminal."""


# ----------------------------------------------------------------------------------------------
# optimisation


@dataclass
class OptimizerConfig:
    """AdamW settings of one component (ALGORITHM.md §7.1)."""

    lr: float = 1e-4
    """Learning rate."""
    eps: float = 1e-8
    """Adam epsilon."""
    grad_clip: float = 1000.0
    """Global L2 norm clip over the component's parameters."""
    warmup: int = 0
    """Linear learning-rate warm-up over this many updates (world model: 1000)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (0 unless compat.weight_decay_original)."""


@dataclass
class OptimConfig:
    """One optimiser per (level, part) (ALGORITHM.md §7.1)."""

    world_model: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=1e-4, eps=1e-8, grad_clip=1000.0, warmup=1000)
    )
    """World model (paper: lr 1e-4, eps 1e-8, clip 1000, warm-up 1000)."""
    actor: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=3e-5, eps=1e-5, grad_clip=100.0)
    )
    """Actor (paper: lr 3e-5, eps 1e-5, clip 100)."""
    critic: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=3e-5, eps=1e-5, grad_clip=100.0)
    )
    """Each critic (paper: lr 3e-5, eps 1e-5, clip 100)."""
    subgoal_ae: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(lr=1e-4, eps=1e-6, grad_clip=100.0)
    )
    """Subgoal autoencoder (paper: lr 1e-4, eps 1e-6, clip 100)."""


# ----------------------------------------------------------------------------------------------
# trainer, logger, callbacks


@dataclass
class TrainerConfig:
    """Lightning Trainer settings that the run exposes."""

    accelerator: str = "auto"
    """Lightning accelerator: auto | cpu | gpu | cuda | mps."""
    devices: int = 1
    """Devices for one run (scale-out is many runs, DESIGN.md §4.12)."""
    precision: str = "32-true"
    """Lightning precision: 32-true | bf16-mixed | 16-mixed."""
    compile: bool = False
    """torch.compile the world model and behaviour networks."""
    threads: int = 0
    """torch CPU threads; 0 keeps torch's default."""
    detect_anomaly: bool = False
    """torch autograd anomaly detection (slow; for debugging)."""


@dataclass
class LoggerConfig:
    """Where metrics go: CSV always, wandb and TensorBoard optional."""

    wandb: bool = True
    """Log to Weights & Biases."""
    wandb_mode: str = "offline"
    """wandb mode: offline | online | disabled (offline needs no account)."""
    project: str = "hieros-pl"
    """wandb project."""
    group: str = ""
    """wandb group; empty = the experiment name."""
    tensorboard: bool = False
    """Also write TensorBoard event files."""
    log_every: int = 1000
    """Scalar logging interval in env steps."""
    video_every: int = 20_000
    """Video interval in env steps (greedy episode, open-loop prediction; also at the final
    evaluation), written to <run_dir>/videos and sent to wandb/TensorBoard; 0 = no videos."""


@dataclass
class CallbacksConfig:
    """Env-step based checkpointing and evaluation."""

    checkpoint_every: int = 10_000
    """Checkpoint interval in env steps (also written at the end and on SIGTERM/SIGUSR1)."""
    eval_every: int = 0
    """Periodic evaluation interval in env steps; 0 = only the final evaluation."""
    eval_episodes: int = 100
    """Greedy episodes of the final evaluation (paper protocol: 100)."""
    periodic_eval_episodes: int = 10
    """Episodes of each periodic evaluation."""
    final_eval: bool = True
    """Run the final evaluation after the budget is reached."""


# ----------------------------------------------------------------------------------------------
# root


@dataclass
class Config:
    """Root config of ``hieros-train``."""

    name: str = "hieros"
    """Experiment name (run dir, wandb group)."""
    seed: int = 0
    """Seeds python, numpy, torch, envs (seed + index) and samplers."""
    env_steps: int = 100_000
    """Budget in agent steps (Atari 100k: 100,000 = 400,000 frames)."""
    train_ratio: float = 1024.0
    """Replayed steps (B·T) per agent step (paper: 1024 → one training call per step)."""
    run_dir: str = "${hydra:runtime.output_dir}"
    """Run directory (Hydra's output dir by default); a rerun on the same dir resumes."""
    env: EnvConfig = MISSING
    world_model: WorldModelConfig = MISSING
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)
    hierarchy: HierarchyConfig = MISSING
    reward: RewardConfig = MISSING
    replay: ReplayConfig = MISSING
    compat: CompatConfig = MISSING
    optim: OptimConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: LoggerConfig = MISSING
    callbacks: CallbacksConfig = MISSING


GROUP_SCHEMAS: dict[str, type] = {
    "env": EnvConfig,
    "world_model": WorldModelConfig,
    "hierarchy": HierarchyConfig,
    "reward": RewardConfig,
    "replay": ReplayConfig,
    "compat": CompatConfig,
    "optim": OptimConfig,
    "trainer": TrainerConfig,
    "logger": LoggerConfig,
    "callbacks": CallbacksConfig,
}


def register_configs() -> None:
    """Store the root schema and one ``base_<group>`` schema per group in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for group, schema in GROUP_SCHEMAS.items():
        store.store(group=group, name=f"base_{group}", node=schema)


# ----------------------------------------------------------------------------------------------
# validation

ENV_KINDS = ("atari100k", "gym", "catch", "navigation")
DYNAMICS = ("s5wm", "rssm")
SCANS = ("parallel", "sequential", "auto")
S5_ACTIVATIONS = ("gelu", "silu")
SAMPLERS = ("etbs", "uniform", "time_balanced")
IMAG_GRADIENTS = ("reinforce", "dynamics", "both")
TWO_HOT_SPACES = ("symlog", "symexp")
"""Bins of the two-hot reward and value heads (hieros_pl.nn.distributions.TwoHot)."""
LOSS_TERMS = ("decoder", "reward", "continue", "dyn", "rep")
REWARD_TERMS = ("extrinsic", "subgoal", "novelty")
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed")
WANDB_MODES = ("offline", "online", "disabled")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        close = difflib.get_close_matches(value, allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{key} must be one of {list(allowed)}, got '{value}'{hint}")


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _in_unit_interval(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


def _same_keys(key: str, got: dict[str, float], allowed: tuple[str, ...]) -> None:
    if set(got) != set(allowed):
        raise ConfigError(f"{key} must have exactly the keys {sorted(allowed)}, got {sorted(got)}")


def _validate_env(env: EnvConfig) -> None:
    _choice("env.kind", env.kind, ENV_KINDS)
    if env.kind == "gym" and not env.id:
        raise ConfigError("env.id must name a gymnasium id when env.kind=gym, e.g. CartPole-v1")
    for key in ("num_envs", "action_repeat", "image_size", "eval_num_envs", "grid_size"):
        _positive(f"env.{key}", getattr(env, key))
    if env.noop_max < 1:
        raise ConfigError(
            f"env.noop_max must be >= 1 (draws U{{0..noop_max-1}}), got {env.noop_max}"
        )
    if env.kind == "atari100k" and env.image_size < 16:
        raise ConfigError(f"env.image_size must be >= 16 for atari100k, got {env.image_size}")


def _validate_world_model(wm: WorldModelConfig, image_size: int) -> None:
    _choice("world_model.dynamics", wm.dynamics, DYNAMICS)
    _choice("world_model.reward_bins", wm.reward_bins, TWO_HOT_SPACES)
    _choice("world_model.s5.scan", wm.s5.scan, SCANS)
    _choice("world_model.s5.activation", wm.s5.activation, S5_ACTIVATIONS)
    for key in ("stoch", "classes", "deter", "hidden", "cnn_depth", "mlp_units", "head_units"):
        _positive(f"world_model.{key}", getattr(wm, key))
    for key in ("model_dim", "state_dim", "init_blocks", "num_blocks"):
        _positive(f"world_model.s5.{key}", getattr(wm.s5, key))
    if wm.s5.state_dim % wm.s5.init_blocks:
        raise ConfigError(
            f"world_model.s5.state_dim ({wm.s5.state_dim}) must be divisible by "
            f"world_model.s5.init_blocks ({wm.s5.init_blocks})"
        )
    _in_unit_interval("world_model.s5.dropout", wm.s5.dropout)
    _in_unit_interval("world_model.unimix", wm.unimix)
    if wm.reward_output_scale < 0:
        raise ConfigError(
            f"world_model.reward_output_scale must be >= 0, got {wm.reward_output_scale}"
        )
    _same_keys("world_model.loss_scales", wm.loss_scales, LOSS_TERMS)
    minres = wm.cnn_minres
    if minres < 1 or image_size % minres or (image_size // minres) & (image_size // minres - 1):
        raise ConfigError(
            f"env.image_size ({image_size}) / world_model.cnn_minres ({minres}) must be a power "
            "of two: the conv encoder halves the image until it reaches cnn_minres"
        )


def _validate_replay(replay: ReplayConfig) -> None:
    _choice("replay.sampler", replay.sampler, SAMPLERS)
    _in_unit_interval("replay.temperature", replay.temperature)
    for key in ("capacity", "batch_size", "batch_length", "chunk_size", "visit_temperature"):
        _positive(f"replay.{key}", getattr(replay, key))
    if replay.batch_length > replay.capacity:
        raise ConfigError(
            f"replay.batch_length ({replay.batch_length}) must not exceed replay.capacity "
            f"({replay.capacity})"
        )


def _validate_behavior(behavior: BehaviorConfig) -> None:
    _choice("behavior.imag_gradient", behavior.imag_gradient, IMAG_GRADIENTS)
    _choice("behavior.value_bins", behavior.value_bins, TWO_HOT_SPACES)
    _positive("behavior.horizon", behavior.horizon)
    for key in ("discount", "discount_lambda", "imag_gradient_mix", "slow_critic_fraction"):
        _in_unit_interval(f"behavior.{key}", getattr(behavior, key))
    _in_unit_interval("behavior.action_unimix", behavior.action_unimix)
    if not 0 < behavior.actor_min_std <= behavior.actor_max_std:
        raise ConfigError(
            "behavior.actor_min_std must be > 0 and <= behavior.actor_max_std, got "
            f"{behavior.actor_min_std} and {behavior.actor_max_std}"
        )


def _validate_hierarchy(hierarchy: HierarchyConfig, reward: RewardConfig) -> None:
    if hierarchy.levels < 1:
        raise ConfigError(f"hierarchy.levels must be >= 1, got {hierarchy.levels}")
    for key in ("stride", "activate_every", "subgoal_groups", "subgoal_classes"):
        _positive(f"hierarchy.{key}", getattr(hierarchy, key))
    if not -1.0 <= hierarchy.reach_threshold <= 1.0:
        raise ConfigError(
            f"hierarchy.reach_threshold must be in [-1, 1], got {hierarchy.reach_threshold}"
        )
    if hierarchy.subgoal_ae_layers < 1:
        raise ConfigError(
            f"hierarchy.subgoal_ae_layers must be >= 1, got {hierarchy.subgoal_ae_layers}"
        )
    _same_keys("reward.weights", reward.weights, REWARD_TERMS)
    for term, weight in reward.weights.items():
        if weight < 0:
            raise ConfigError(f"reward.weights.{term} must be >= 0, got {weight}")


def _validate_run(cfg: Config) -> None:
    _positive("env_steps", cfg.env_steps)
    _positive("train_ratio", cfg.train_ratio)
    _choice("trainer.precision", cfg.trainer.precision, PRECISIONS)
    _choice("logger.wandb_mode", cfg.logger.wandb_mode, WANDB_MODES)
    _positive("logger.log_every", cfg.logger.log_every)
    if cfg.logger.video_every < 0:
        raise ConfigError(
            f"logger.video_every must be >= 0 (0 = off), got {cfg.logger.video_every}"
        )
    _positive("callbacks.checkpoint_every", cfg.callbacks.checkpoint_every)
    _positive("callbacks.eval_episodes", cfg.callbacks.eval_episodes)
    for part in ("world_model", "actor", "critic", "subgoal_ae"):
        optimizer = getattr(cfg.optim, part)
        _positive(f"optim.{part}.lr", optimizer.lr)
        _positive(f"optim.{part}.eps", optimizer.eps)
        _positive(f"optim.{part}.grad_clip", optimizer.grad_clip)


def validate(cfg: Config) -> Config:
    """Check every cross-field constraint; raise ConfigError naming the key. Returns ``cfg``."""
    _validate_env(cfg.env)
    _validate_world_model(cfg.world_model, cfg.env.image_size)
    _validate_replay(cfg.replay)
    _validate_behavior(cfg.behavior)
    _validate_hierarchy(cfg.hierarchy, cfg.reward)
    _validate_run(cfg)
    return cfg


# ----------------------------------------------------------------------------------------------
# strictness: unknown keys and composition errors, each on one line naming the key


def schema_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of ``schema`` (dict-valued fields as one key; their keys are validated)."""
    keys: list[str] = []
    for item in dataclasses.fields(schema):
        key = f"{prefix}{item.name}"
        nested = GROUP_SCHEMAS.get(item.name) if not prefix else None
        nested = nested or _dataclass_type(item)
        keys.append(key)
        if nested is not None:
            keys += schema_keys(nested, f"{key}.")
    return keys


def _dataclass_type(item: dataclasses.Field[Any]) -> type | None:
    default = item.default_factory() if item.default_factory is not dataclasses.MISSING else None
    return type(default) if dataclasses.is_dataclass(default) else None


def unknown_keys(node: Any, schema: type = Config, prefix: str = "") -> list[str]:
    """Dotted keys of the composed ``node`` that ``schema`` does not define (``+key=...``)."""
    fields = {item.name: item for item in dataclasses.fields(schema)}
    unknown = []
    for key in node:
        if key not in fields:
            unknown.append(f"{prefix}{key}")
            continue
        nested = (GROUP_SCHEMAS.get(key) if not prefix else None) or _dataclass_type(fields[key])
        child = node[key] if OmegaConf.is_config(node) else None
        if nested is not None and isinstance(child, DictConfig):
            unknown += unknown_keys(child, nested, f"{prefix}{key}.")
    return unknown


def closest_keys(key: str, count: int = 3) -> list[str]:
    """The valid keys most similar to ``key`` (same group first)."""
    valid = schema_keys()
    close = difflib.get_close_matches(key, valid, n=count, cutoff=0.5)
    if not close:
        leaf = key.rsplit(".", 1)[-1]
        close = [name for name in valid if name.rsplit(".", 1)[-1] == leaf][:count]
    return close


def unknown_key_error(key: str) -> ConfigError:
    close = closest_keys(key)
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    return ConfigError(f"unknown key '{key}'{hint} (hieros-train --cfg job lists them all)")


def composition_error(error: Exception) -> ConfigError:
    """Hydra's composition/override error as a one-line ConfigError naming the key or option."""
    text = str(error)
    match = re.search(r"Could not override '([^']+)'", text)
    if match and "To append to your config" in text:
        return unknown_key_error(match.group(1))
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:
        group = missing.group(1).rsplit("/", 1)[0]
        options = re.findall(r"^\t(\S+)$", text, flags=re.MULTILINE)
        choices = [name for name in options if not name.startswith("base_")]
        listed = f"; available options for '{group}': {', '.join(choices)}" if choices else ""
        return ConfigError(f"no config '{missing.group(1)}'{listed}")
    first = text.splitlines()[0] if text else type(error).__name__
    cause = _chain_text(error).splitlines()
    detail = f" ({cause[0].strip()})" if cause and cause[0].strip() not in first else ""
    return ConfigError(f"{first}{detail}")


def _chain_text(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return str(cause) if cause is not None else ""


def to_config(cfg: DictConfig | Any) -> Config:
    """Convert a composed DictConfig to the typed :class:`Config` and validate it.

    Keys the schema does not define (``+bogus=1``) are refused, naming the closest valid keys.
    """
    if isinstance(cfg, Config):
        return validate(cfg)
    unknown = [key for key in unknown_keys(cfg) if key != "hydra"]
    if unknown:
        raise unknown_key_error(unknown[0])
    config = OmegaConf.to_object(cfg)
    if not isinstance(config, Config):
        raise ConfigError(
            f"the composed config is not a hieros Config (got {type(config).__name__})"
        )
    return validate(config)


def run_seed(cfg: Config) -> int | None:
    """``seed``, or None under ``compat.seeding_original`` (D12: the original seeds nothing)."""
    return None if cfg.compat.seeding_original else cfg.seed


def config_diff(config: Config, reference: Config) -> list[str]:
    """``key: reference -> value`` for every leaf where ``config`` differs from ``reference``."""
    ours = flatten_keys(OmegaConf.to_container(OmegaConf.structured(config), resolve=False))
    theirs = flatten_keys(OmegaConf.to_container(OmegaConf.structured(reference), resolve=False))
    return [
        f"{key}: {theirs.get(key)!r} -> {ours.get(key)!r}"
        for key in sorted(set(ours) | set(theirs))
        if ours.get(key) != theirs.get(key) and key not in ("run_dir", "name")
    ]


def flatten_keys(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts of a config container -> {"group.key": leaf value}."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(flatten_keys(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat
