"""Switching a module's train/eval mode around a block of inference calls."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluation_mode(module: object) -> Iterator[None]:
    """Temporarily put a module in eval mode (no dropout), then restore its training flag.

    A module already in eval mode is left alone: switching walks every submodule, which costs
    milliseconds for the whole hierarchy, so loops of acting steps switch once around the loop.
    """
    if not isinstance(module, nn.Module) or not module.training:
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
