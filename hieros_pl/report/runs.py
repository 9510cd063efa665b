"""The runs of a sweep dir: what each was configured with, how far it got, its final score and
its learning curve, and the configuration it belongs to."""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import OmegaConf

from hieros_pl.config import GROUP_SCHEMAS, Config, flatten_keys

if TYPE_CHECKING:
    import pandas as pd

RUN_CONFIG = "config.yaml"
IDENTITY_KEYS = ("seed", "env.game", "env.id", "run_dir", "name", "logger.group")
"""Keys that tell runs apart without making them different configurations."""
EXECUTION_KEYS = (
    "trainer.threads",
    "trainer.detect_anomaly",
    "callbacks.checkpoint_every",
    "logger.*",
)
"""Keys (fnmatch patterns) that change how a run is executed or logged, not what it learns or how
it is scored: runs differing only in them are seeds of one configuration."""
CURVE_KEY = "episodes/return"
"""The logged training-episode return the learning curves are drawn from."""
INTERVAL_KEY = "perf/interval_seconds"
"""The logged wall time of each log interval, summed into a run's training time."""
RATE_KEY = "perf/env_steps_per_second"
"""The logged throughput of each log interval: the training time of runs without
``INTERVAL_KEY`` (runs started before it was logged) is estimated from it."""
LATE_DIAGNOSTICS = {
    "late_reward_real": "level0/reward/extrinsic",
    "late_reward_imagined": "level0/behavior/reward/extrinsic",
    "late_wm_reward_error": "level0/wm/reward_error",
    "late_wm_reward_corr": "level0/wm/reward_corr",
    "late_actor_entropy": "level0/behavior/actor_entropy",
}
"""Report column -> logged level-0 metric, averaged over the last ``LATE_FRACTION`` of a run's
env steps: the extrinsic reward per step on the real states the agent acted on, the world
model's reward per step in imagination (under the same actor), its mean absolute reward error on
replayed batches and the correlation of its predicted with the real rewards there, and the
actor's entropy. An imagined reward far below the real one says that the
actor trains on a world model that does not predict the game's rewards."""
LATE_FRACTION = 0.2


@dataclass
class RunRecord:
    """One run dir of a sweep.

    game: camel-case Atari game, the gym id, or the env kind (catch, navigation).
    score: the final evaluation's greedy mean return (None when the run has none), with its
    protocol in ``protocol``. curve: (env steps [N], mean training-episode return [N]).
    train_seconds: wall time of the training loop summed over its log intervals (every resumed
    segment counted once; start-up and evaluations not included); eval_seconds: wall time of the
    final evaluation (None when not recorded). sampled_score: the same evaluation's sampled mean
    return; greedy_entropy_fraction: its greedy policy's mean entropy / log A at level 0 (None
    where not recorded; a greedy score far below the sampled one with a wide policy is the
    argmax of a policy that trained stochastic). late: the ``LATE_DIAGNOSTICS`` columns (None
    for metrics the run did not log).
    """

    path: Path
    config: dict[str, Any]
    game: str
    seed: int
    atari: bool
    budget: int
    env_steps: int
    score: float | None
    protocol: str
    curve: tuple[np.ndarray, np.ndarray]
    train_seconds: float = 0.0
    eval_seconds: float | None = None
    sampled_score: float | None = None
    greedy_entropy_fraction: float | None = None
    late: dict[str, float | None] = field(default_factory=dict)
    configuration: str = "default"
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.score is not None


def find_runs(sweep_dir: str | Path) -> list[RunRecord]:
    """Every run dir below ``sweep_dir`` (a dir with hieros' ``config.yaml``), sorted by path,
    labelled with its configuration (see :func:`label_configurations`)."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"sweep dir {root} does not exist")
    paths = sorted(path.parent for path in root.rglob(RUN_CONFIG) if path.parent.name != ".hydra")
    defaults = schema_defaults()
    runs = [read_run(path, defaults) for path in paths]
    label_configurations(runs)
    return runs


def read_run(run_dir: Path, defaults: dict[str, Any]) -> RunRecord:
    """A run's config (``defaults`` where it lacks a key, see :func:`schema_defaults`), final
    score, reached env steps, learning curve, wall time and late-training diagnostics."""
    recorded = flatten_keys(OmegaConf.to_container(OmegaConf.load(run_dir / RUN_CONFIG)))
    config = {**defaults, **recorded}
    kind = str(config.get("env.kind"))
    atari = kind == "atari100k"
    if atari:
        from hieros_pl.envs.games import canonical_game

        game = canonical_game(str(config["env.game"]), key="env.game")
    else:
        game = str(config.get("env.id") or kind)
    metrics = read_metrics(run_dir)
    steps, returns, reached = read_curve(metrics)
    final = read_final_evaluation(run_dir)
    score, protocol, evaluated_at = final_score(final)
    sampled_score, greedy_entropy_fraction = policy_gap(final)
    return RunRecord(
        path=run_dir,
        config=config,
        game=game,
        seed=int(config["seed"]),
        atari=atari,
        budget=int(config["env_steps"]),
        env_steps=max(reached, evaluated_at),
        score=score,
        protocol=protocol,
        curve=(steps, returns),
        train_seconds=read_train_seconds(metrics),
        eval_seconds=final_eval_seconds(final),
        sampled_score=sampled_score,
        greedy_entropy_fraction=greedy_entropy_fraction,
        late=read_late_diagnostics(metrics),
    )


def schema_defaults() -> dict[str, Any]:
    """Every flat config key with a default in the schema: a run that predates a key ran with its
    default (new keys default to the earlier behaviour), so :func:`read_run` fills it in and the
    run is not a configuration of its own."""
    container = OmegaConf.to_container(OmegaConf.structured(Config))
    assert isinstance(container, dict)
    schema: dict[str, Any] = {str(key): value for key, value in container.items()}
    for group, group_schema in GROUP_SCHEMAS.items():
        schema[group] = OmegaConf.to_container(OmegaConf.structured(group_schema))
    return {key: value for key, value in flatten_keys(schema).items() if value != "???"}


def read_metrics(run_dir: Path) -> pd.DataFrame | None:
    """The run's logged metrics (``csv/metrics.csv``), None without a CSV."""
    import pandas as pd

    path = run_dir / "csv" / "metrics.csv"
    return pd.read_csv(path) if path.exists() else None


def read_final_evaluation(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The summaries per policy (greedy, sample) of the last ``eval/final_*.json``; {} if none."""
    finals = sorted((run_dir / "eval").glob("final_*.json"))
    return json.loads(finals[-1].read_text()) if finals else {}


def final_score(final: dict[str, dict[str, Any]]) -> tuple[float | None, str, int]:
    """(greedy mean return, its protocol, env steps) of a final evaluation; None if absent."""
    if not final:
        return None, "no final evaluation", 0
    summary = final["greedy"]
    score = float(summary["return_mean"])
    if math.isnan(score):
        return None, "final evaluation without a complete episode", int(summary["env_steps"])
    return score, describe_protocol(summary), int(summary["env_steps"])


def policy_gap(final: dict[str, dict[str, Any]]) -> tuple[float | None, float | None]:
    """(sampled mean return, greedy policy's entropy / log A) of a final evaluation; None for
    what it did not record."""
    sampled = final.get("sample", {}).get("return_mean")
    entropy = final.get("greedy", {}).get("policy", {}).get("entropy_fraction_mean")
    return (
        None if sampled is None or math.isnan(sampled) else float(sampled),
        None if entropy is None else float(entropy),
    )


def describe_protocol(summary: dict[str, Any]) -> str:
    """One line naming how an evaluation summary was measured."""
    protocol = summary.get("protocol", {})
    where = protocol.get("episodes_from", "eval envs")
    text = (
        f"{summary['mode']} policy, mean of {summary['episodes']} episodes on {where} "
        f"after {summary['env_steps']} env steps"
    )
    if "runtime_state" in protocol:
        text += f" ({protocol['runtime_state']})"
    return text


def read_curve(metrics: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(env steps, mean training-episode return) of the logged rows, and the last env step."""
    empty = np.zeros(0)
    if metrics is None:
        return empty, empty, 0
    reached = int(metrics["env_steps"].max()) if "env_steps" in metrics else 0
    if CURVE_KEY not in metrics:
        return empty, empty, reached
    rows = metrics.dropna(subset=[CURVE_KEY]).sort_values("step")
    steps = rows["step"].to_numpy(np.float64)
    return steps, rows[CURVE_KEY].to_numpy(np.float64), max(reached, int(steps.max(initial=0)))


def final_eval_seconds(final: dict[str, dict[str, Any]]) -> float | None:
    """Wall time of a final evaluation: the ``seconds`` its summaries record (greedy and sampled
    added), None for runs that predate the record or have no final evaluation."""
    seconds: list[float | None] = [summary.get("seconds") for summary in final.values()]
    recorded = [float(value) for value in seconds if value is not None]
    if not seconds or len(recorded) < len(seconds):
        return None
    return sum(recorded)


def read_train_seconds(metrics: pd.DataFrame | None) -> float:
    """The training loop's wall time of a run; 0 without a CSV.

    The sum of the logged intervals' wall time, i.e. the training loop's time without start-up
    or evaluations; a resumed run's CSV holds each interval once. Runs that logged no interval
    times get env steps taken / logged env steps per second per interval (which counts the
    prefill steps at the first interval's rate).
    """
    if metrics is None:
        return 0.0
    if INTERVAL_KEY in metrics:
        return float(metrics[INTERVAL_KEY].sum())
    if RATE_KEY not in metrics or "env_steps" not in metrics:
        return 0.0
    rows = metrics.dropna(subset=[RATE_KEY, "env_steps"]).sort_values("env_steps")
    taken = np.diff(rows["env_steps"].to_numpy(np.float64), prepend=0.0)
    rates = rows[RATE_KEY].to_numpy(np.float64)
    valid = rates > 0
    return float(np.sum(taken[valid] / rates[valid]))


def read_late_diagnostics(metrics: pd.DataFrame | None) -> dict[str, float | None]:
    """Each ``LATE_DIAGNOSTICS`` metric's mean over the logged rows in the last ``LATE_FRACTION``
    of the env steps the run reached (None where it was never logged there)."""
    late: dict[str, float | None] = dict.fromkeys(LATE_DIAGNOSTICS)
    if metrics is None or "env_steps" not in metrics or metrics["env_steps"].isna().all():
        return late
    start = (1.0 - LATE_FRACTION) * float(metrics["env_steps"].max())
    rows = metrics[metrics["env_steps"] >= start]
    for column, key in LATE_DIAGNOSTICS.items():
        if key in rows and rows[key].notna().any():
            late[column] = float(rows[key].mean())
    return late


def label_configurations(runs: Iterable[RunRecord]) -> None:
    """Label each run with ``key=value`` of the config keys that differ between the runs
    (IDENTITY_KEYS and EXECUTION_KEYS aside); runs that share those values share a
    configuration."""
    runs = list(runs)
    keys = sorted(
        key
        for key in {key for run in runs for key in run.config} - set(IDENTITY_KEYS)
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in EXECUTION_KEYS)
    )
    varying = [key for key in keys if len({json.dumps(run.config.get(key)) for run in runs}) > 1]
    for run in runs:
        parts = [f"{key}={run.config.get(key)}" for key in varying]
        run.configuration = ",".join(parts) or "default"
