"""S5 stack timings for hieros-bench: training-pass scans and per-step latency.

Figures are medians over a few repeats after warm-up, in milliseconds, at the Atari 100k S5 sizes
(ALGORITHM.md §1: D=256, P=128, J=4, N_b=4). The scan-only sweep over T is what
`CPU_PARALLEL_MIN_STEPS` in `nn/scan.py` was chosen from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from hieros_pl.bench.timing import median_ms
from hieros_pl.nn.s5 import S5Stack
from hieros_pl.nn.scan import SCANS

MODEL_DIM = 256
STATE_DIM = 128
INIT_BLOCKS = 4
NUM_BLOCKS = 4
DROPOUT = 0.1
"""Paper-era dropout; the training pass runs with dropout active."""
TRAIN_BATCH = 16
TRAIN_LENGTHS = (64, 256)
SCAN_LENGTHS = (2, 4, 8, 16, 32, 64, 128, 256, 1024)
"""The scan alone, one SSM's [TRAIN_BATCH, T, STATE_DIM]; in the stack, matmuls hide it."""
STEP_BATCHES = (1, 1024)
"""B=1 is acting in one env; B=1024 = 16·64 is imagination from every replayed state."""
WARMUP = 1
REPEATS = 5
SCAN_REPEATS = 20
STEP_REPEATS = 50


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[int]:
    """Run with `threads` intra-op threads (unchanged if None), restoring the old value after."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def _build_stack(scan: str) -> S5Stack:
    """The Atari-sized stack, same weights for every scan."""
    torch.manual_seed(0)
    return S5Stack(MODEL_DIM, STATE_DIM, INIT_BLOCKS, NUM_BLOCKS, DROPOUT, "gelu", scan)


def _train_pass_ms(scan: str, T: int) -> float:
    """Forward + backward over [TRAIN_BATCH, T] with 5% resets, through both out and states."""
    stack = _build_stack(scan).train()
    x = torch.randn(TRAIN_BATCH, T, MODEL_DIM)
    reset = torch.rand(TRAIN_BATCH, T) < 0.05
    reset[:, 0] = True

    def run() -> None:
        stack.zero_grad(set_to_none=True)
        out, states = stack(x, reset)
        (out.mean() + states.real.mean()).backward()

    return median_ms(run, REPEATS, WARMUP)


def _scan_ms(scan: str, T: int) -> float:
    """Forward + backward of one recurrence over [TRAIN_BATCH, T, STATE_DIM], 5% resets."""
    modulus = 0.5 + 0.5 * torch.rand(STATE_DIM)
    decay = torch.polar(modulus, torch.rand(STATE_DIM) * math.tau).requires_grad_()
    inputs = torch.randn(TRAIN_BATCH, T, STATE_DIM, dtype=torch.complex64, requires_grad=True)
    reset = torch.rand(TRAIN_BATCH, T) < 0.05

    def run() -> None:
        SCANS[scan](decay, inputs, reset, None).real.sum().backward()

    return median_ms(run, SCAN_REPEATS, WARMUP)


def _step_ms(batch_size: int) -> float:
    """Latency of one `S5Stack.step` without gradients (acting and imagination)."""
    stack = _build_stack("auto").eval()
    x_t = torch.randn(batch_size, MODEL_DIM)
    reset_t = torch.zeros(batch_size, dtype=torch.bool)
    state = stack.initial_state(batch_size, "cpu")

    def run() -> None:
        with torch.no_grad():
            stack.step(x_t, reset_t, state)

    return median_ms(run, STEP_REPEATS, WARMUP)


def _figure(name: str, value: float, **config: Any) -> dict[str, Any]:
    """One benchmark figure in milliseconds, with the configuration it was measured at."""
    return {"name": name, "value": value, "unit": "ms", **config}


def bench_s5(threads: int | None = None) -> list[dict[str, Any]]:
    """One dict per figure: name, value, unit and the configuration it was measured at.

    The caller's RNG state is left untouched.
    """
    with _torch_threads(threads) as used_threads, torch.random.fork_rng(devices=[]):
        sizes = {
            "model_dim": MODEL_DIM,
            "state_dim": STATE_DIM,
            "init_blocks": INIT_BLOCKS,
            "num_blocks": NUM_BLOCKS,
            "threads": used_threads,
        }
        training = [("s5_stack_forward_backward", _train_pass_ms, T) for T in TRAIN_LENGTHS]
        training += [("s5_scan_forward_backward", _scan_ms, T) for T in SCAN_LENGTHS]
        figures = [
            _figure(name, measure(scan, T), scan=scan, batch_size=TRAIN_BATCH, T=T, **sizes)
            for name, measure, T in training
            for scan in ("parallel", "sequential")
        ]
        figures += [
            _figure("s5_stack_step", _step_ms(B), batch_size=B, grad=False, **sizes)
            for B in STEP_BATCHES
        ]
    return figures
