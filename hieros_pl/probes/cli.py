"""``hieros-probe reward RUN_DIR``: is the reward visible in the frames, carried by the world
model's state, read out by its reward head? (``hieros_pl.probes.reward``)

``hieros-probe refit RUN_DIR [KEY=VALUE ...]``: the same scores for a fresh world model (the run's
config plus world-model overrides) trained on the run's replay (``hieros_pl.probes.refit``).

``hieros-probe encoder RUN_DIR``: can a fresh copy of the run's encoder learn the reward from
o_t, and does the world model's two-hot loss learn it at the replay's rate
(``hieros_pl.probes.encoder``)?

All write JSON under ``<run_dir>/probes/`` (or ``--out``) and print it with a reading.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hieros_pl.arg_types import at_least, count, fraction
from hieros_pl.errors import ProbeError, cli_boundary
from hieros_pl.probes.encoder import LOSSES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hieros-probe", description=__doc__)
    sub = parser.add_subparsers(dest="probe", required=True)
    reward = _subcommand(sub, "reward", "AUCs of rewarded steps: frames, features, head")
    reward.add_argument("--steps", type=count, default=2000, help="training steps of each probe")
    refit = _subcommand(sub, "refit", "reward probe of a fresh world model fit to the replay")
    refit.add_argument("overrides", nargs="*", help="world_model.KEY=VALUE, optim.world_model.…")
    refit.add_argument("--updates", type=count, default=4000, help="world-model updates")
    refit.add_argument("--steps", type=count, default=2000, help="training steps of each probe")
    encoder = _subcommand(sub, "encoder", "can a fresh encoder learn the reward, by which loss")
    encoder.add_argument("--updates", type=count, default=4000, help="updates of each loss")
    encoder.add_argument(
        "--batch-size",
        type=at_least(2),
        default=None,
        help="rows per update (default B x T of the run)",
    )
    encoder.add_argument("--loss", nargs="+", choices=LOSSES, default=list(LOSSES))
    encoder.add_argument(
        "--head-layers", type=at_least(0), default=None, help="hidden layers (default the run's)"
    )
    encoder.add_argument(
        "--output-scale",
        type=at_least(0, float),
        default=0.0,
        help="output init scale (0: the reward head's)",
    )
    # Overrides may follow options (`refit RUN --threads 1 world_model.x=1`): argparse stops
    # the positional list at the first option, so the KEY=VALUE words after it come back unknown.
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.probe == "refit" and all(_is_override(word) for word in unknown):
        args.overrides += unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    with cli_boundary("hieros-probe"):
        {"reward": _probe_reward, "refit": _refit, "encoder": _probe_encoder}[args.probe](args)


def _subcommand(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A probe's parser with the options every probe takes."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    parser.add_argument("path", type=Path, help="run dir or checkpoint file")
    parser.add_argument("--checkpoint", default=None, help="file in RUN_DIR/checkpoints")
    parser.add_argument("--level", type=int, default=0, help="hierarchy level (default 0)")
    parser.add_argument("--test-fraction", type=fraction, default=0.2, help="last part of a stream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: in RUN_DIR)")
    return parser


def _is_override(word: str) -> bool:
    """A KEY=VALUE word, not an option."""
    return "=" in word and not word.startswith("-")


def _load(args: argparse.Namespace) -> tuple[Path, Any, Any, Any]:
    """(checkpoint, config, module, level's replay) of the run, or exit naming what is wrong."""
    import torch

    from hieros_pl.builders import load_replay
    from hieros_pl.evaluate import checkpoint_path, load_run

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    checkpoint = checkpoint_path(args.path, args.checkpoint)
    cfg, module = load_run(checkpoint)
    levels = module.hierarchy.levels
    if not 0 <= args.level < len(levels):
        raise ProbeError(f"--level {args.level}: the run has levels 0-{len(levels) - 1}")
    if not levels[args.level].owns_world_model:
        raise ProbeError(f"--level {args.level} shares level 0's world model: probe level 0")
    buffer = load_replay(cfg, module, checkpoint).buffers[args.level]
    return checkpoint, cfg, module, buffer


@dataclass
class Loaded:
    """What a probe reads: the run's config, module and the level's replay, and the run dir."""

    cfg: Any
    module: Any
    buffer: Any
    source: str


def _probe_reward(args: argparse.Namespace) -> None:
    from hieros_pl.probes.reward import probe_reward

    def compute(run: Loaded) -> dict[str, Any]:
        world_model = run.module.hierarchy.levels[args.level].world_model
        length = run.cfg.replay.batch_length
        return probe_reward(
            world_model,
            run.buffer,
            run.source,
            length,
            args.steps,
            test_fraction=args.test_fraction,
            seed=args.seed,
        )

    _run(args, compute, lambda env_steps: f"reward_level{args.level}_{env_steps}")


def _refit(args: argparse.Namespace) -> None:
    from hieros_pl.probes.refit import refit_and_probe, refit_config

    tag = "_".join(args.overrides).replace("/", "-") or "as_run"

    def compute(run: Loaded) -> dict[str, Any]:
        refit_cfg = refit_config(run.cfg, args.overrides)
        return refit_and_probe(
            refit_cfg,
            run.buffer,
            args.level,
            run.source,
            args.updates,
            args.steps,
            args.test_fraction,
            args.seed,
        )

    stem = f"refit_level{args.level}_{args.updates}updates_{tag}"
    _run(args, compute, lambda _: stem, {"overrides": args.overrides})


def _probe_encoder(args: argparse.Namespace) -> None:
    from hieros_pl.probes.encoder import HeadShape, encoder_reading, probe_encoder

    shape = HeadShape(args.head_layers, args.output_scale)

    def compute(run: Loaded) -> dict[str, Any]:
        return probe_encoder(
            run.cfg,
            run.buffer,
            args.level,
            run.source,
            args.updates,
            args.batch_size,
            tuple(args.loss),
            args.test_fraction,
            args.seed,
            shape=shape,
        )

    stem = f"encoder_level{args.level}_{args.updates}updates{_head_tag(args)}"
    _run(args, compute, lambda _: stem, read=encoder_reading)


def _head_tag(args: argparse.Namespace) -> str:
    """File-name part for a subset of the losses or a head other than the reward head's shape."""
    every = sorted(args.loss) == sorted(LOSSES)
    losses = "" if every else "_" + "-".join(args.loss)
    layers = "" if args.head_layers is None else f"_layers{args.head_layers}"
    scale = "" if args.output_scale == 0.0 else f"_outscale{args.output_scale:g}"
    return losses + layers + scale


def _run(
    args: argparse.Namespace,
    compute: Callable[[Loaded], dict[str, Any]],
    stem: Callable[[int], str],
    extra: dict[str, Any] | None = None,
    read: Callable[[dict[str, Any]], str] | None = None,
) -> None:
    """Load the run, run the probe, prefix where it was measured, write ``--out`` or
    ``probes/<stem>.json``. A ProbeError or ConfigError ends at the CLI boundary as one line."""
    checkpoint, cfg, module, buffer = _load(args)
    env_steps = int(module.env_steps)
    summary = compute(Loaded(cfg, module, buffer, str(checkpoint.parent.parent)))
    header = {"checkpoint": str(checkpoint), "level": args.level, "env_steps": env_steps}
    out = args.out or checkpoint.parent.parent / "probes" / f"{stem(env_steps)}.json"
    _write({**header, **(extra or {}), **summary}, out, read or reading)


def _write(summary: dict[str, Any], out: Path, read: Callable[[dict[str, Any]], str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    summary["written_to"] = str(out)
    print(json.dumps(summary, indent=2))
    print(read(summary["auc"]), file=sys.stderr)


def reading(auc: dict[str, Any]) -> str:
    """One sentence on where the reward is lost, from the three AUCs (0.05 apart counts).

    What the state carries is the better of the feature probe and the head (the head reads the
    same state; with few rewarded rows the probe can do worse than the head).
    """
    frames, features, head = auc["frames"], auc["features"], auc["head"]
    if frames < 0.6:
        return "two frames barely show the reward (frames AUC < 0.6): it needs memory or luck"
    if max(features, head) < frames - 0.05:
        return "the world model's state drops the reward that the frames show (features < frames)"
    if head < features - 0.05:
        return "the state carries the reward but the reward head does not read it (head < features)"
    return "the reward head reads what the frames show (head ≈ features ≈ frames)"


if __name__ == "__main__":
    main()
