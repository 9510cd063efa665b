"""hieros-bench: component throughput figures as JSON lines, with the machine they came from.

``hieros-bench [replay envs s5 world_model agent ...]`` runs the named suites (all by default) and
prints one JSON object per figure: {"suite", "name", "value", "unit", ...}. The first line
describes the machine (CPU, cores, torch threads, CUDA device).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from collections.abc import Callable
from typing import Any

import torch

SUITES: dict[str, tuple[str, str]] = {
    "replay": ("hieros_pl.bench.replay", "bench_replay"),
    "envs": ("hieros_pl.bench.envs", "bench_envs"),
    "s5": ("hieros_pl.bench.s5", "bench_s5"),
    "world_model": ("hieros_pl.bench.world_model", "bench_world_model"),
    "agent": ("hieros_pl.bench.agent", "bench_agent"),
    "policy": ("hieros_pl.bench.agent", "bench_policy"),
    "policy_parts": ("hieros_pl.bench.policy_parts", "bench_policy_parts"),
    "evaluation": ("hieros_pl.bench.evaluation", "bench_evaluation"),
    "run": ("hieros_pl.bench.run", "bench_run"),
    "videos": ("hieros_pl.bench.videos", "bench_videos"),
}
"""Suite name -> (module, function returning a list of figure dicts). Imported lazily."""


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "suite": "machine",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def load_suite(name: str) -> Callable[[], list[dict[str, Any]]]:
    module_name, function_name = SUITES[name]
    return getattr(importlib.import_module(module_name), function_name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hieros-bench", description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=f"any of {list(SUITES)}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        sys.exit(f"hieros-bench: unknown suite(s) {unknown}; choose from {list(SUITES)}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(json.dumps(machine_info()), flush=True)
    for name in args.suites:
        for figure in load_suite(name)():
            print(json.dumps({"suite": name, **figure}), flush=True)


if __name__ == "__main__":
    main()
