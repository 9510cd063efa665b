"""Training batches for every level from the per-level replays, one HierarchyBatch per call.

The dataset only samples; the environments are stepped by the env-loop callback (DESIGN.md §4.6).
Lightning fetches one batch ahead of the training step it feeds, so when the module trains call
n the dataset has already yielded call n+1 (drawn before call n's env steps). A checkpoint taken
after call n therefore holds replay states from after that draw. To resume exactly, the dataset
remembers the keys of its last few yielded calls; ``set_call_index(n + 1)`` on resume makes it
yield call n+1 again from those keys, then continue with fresh draws where it left off.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from hieros_pl.data.batch import Batch, HierarchyBatch
from hieros_pl.replay.buffer import SequenceBuffer, SequenceKeys, as_numpy

REMEMBERED_CALLS = 4
"""Yielded calls whose keys are kept for a resume (Lightning prefetches one)."""


@dataclass(frozen=True)
class _YieldedCall:
    """The keys each level replayed on one call (None: the level did not train)."""

    call_index: int
    keys: list[SequenceKeys | None]


class ReplayDataset(IterableDataset[HierarchyBatch]):
    """Yields HierarchyBatch forever: level i is present iff n % level_strides[i] == 0 and ready."""

    def __init__(self, buffers: list[SequenceBuffer], level_strides: list[int]) -> None:
        super().__init__()
        if len(buffers) != len(level_strides) or not buffers:
            raise ValueError(
                f"need one level stride per replay buffer, got {len(level_strides)} strides for "
                f"{len(buffers)} buffers"
            )
        if any(stride < 1 for stride in level_strides):
            raise ValueError(f"level strides must be >= 1, got {level_strides}")
        self.buffers = buffers
        self.level_strides = list(level_strides)
        self.fresh_call_index = 0
        self.history: deque[_YieldedCall] = deque(maxlen=REMEMBERED_CALLS)
        self.replays: deque[_YieldedCall] = deque()

    @property
    def next_call_index(self) -> int:
        """The call whose batch the next ``next(iter(...))`` yields."""
        return self.replays[0].call_index if self.replays else self.fresh_call_index

    def __iter__(self) -> Iterator[HierarchyBatch]:
        while True:
            yield self.next_batch()

    def next_batch(self) -> HierarchyBatch:
        """The batches of call ``next_call_index``, then advance."""
        if self.replays:
            call = self.replays.popleft()
        else:
            call = _YieldedCall(self.fresh_call_index, self._draw_keys(self.fresh_call_index))
            self.fresh_call_index += 1
        levels: list[Batch | None] = [
            None if keys is None else buffer.gather(keys)
            for buffer, keys in zip(self.buffers, call.keys)
        ]
        self.history.append(call)
        return HierarchyBatch(call_index=call.call_index, levels=levels)

    def _draw_keys(self, call_index: int) -> list[SequenceKeys | None]:
        if not any(buffer.ready() for buffer in self.buffers):
            raise RuntimeError(
                "no replay buffer holds replay.batch_size sequences yet: the replay must be "
                "prefilled before fit (the env-loop callback does this in on_fit_start)"
            )
        return [
            buffer.draw() if call_index % stride == 0 and buffer.ready() else None
            for buffer, stride in zip(self.buffers, self.level_strides)
        ]

    def set_call_index(self, call_index: int) -> None:
        """Make the next yielded batch the one of call ``call_index``.

        An index that was already yielded (Lightning's prefetch before a checkpoint) is yielded
        again from its remembered keys, identical to the first time, and so are the calls after
        it; fresh draws then continue where they stopped. A later index skips ahead.
        """
        if call_index == self.next_call_index:
            return
        if call_index > self.next_call_index:
            self.history.clear()
            self.replays.clear()
            self.fresh_call_index = call_index
            return
        again = [call for call in self.history if call.call_index >= call_index]
        if not again or again[0].call_index != call_index:
            raise ValueError(
                f"cannot rewind the replay dataset to call {call_index}: it remembers calls "
                f"{[call.call_index for call in self.history]} and would yield "
                f"{self.next_call_index} next"
            )
        stale = [
            level
            for call in again
            for level, (buffer, keys) in enumerate(zip(self.buffers, call.keys))
            if keys is not None and not buffer.holds(keys)
        ]
        if stale:
            raise ValueError(f"cannot replay call {call_index}: levels {stale} overwrote its rows")
        kept = [call for call in self.history if call.call_index < call_index]
        self.history = deque(kept, maxlen=REMEMBERED_CALLS)
        self.replays = deque([*again, *self.replays])

    def state_dict(self) -> dict[str, Any]:
        return {
            "fresh_call_index": self.fresh_call_index,
            "next_call_index": self.next_call_index,
            "calls": [_call_state(call) for call in [*self.history, *self.replays]],
            "buffers": [buffer.state_dict() for buffer in self.buffers],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["buffers"]) != len(self.buffers):
            raise ValueError(
                f"checkpoint has {len(state['buffers'])} replay levels, this run has "
                f"{len(self.buffers)} (hierarchy.levels must not change on resume)"
            )
        for buffer, buffer_state in zip(self.buffers, state["buffers"]):
            buffer.load_state_dict(buffer_state)
        calls = [_call_from_state(item) for item in state["calls"]]
        self.history = deque(calls, maxlen=REMEMBERED_CALLS)
        self.replays.clear()
        self.fresh_call_index = int(state["fresh_call_index"])
        self.set_call_index(int(state["next_call_index"]))


def _call_state(call: _YieldedCall) -> dict[str, Any]:
    return {
        "call_index": call.call_index,
        "keys": [
            None
            if keys is None
            else {"env": torch.from_numpy(keys.env), "start": torch.from_numpy(keys.start)}
            for keys in call.keys
        ],
    }


def _call_from_state(state: dict[str, Any]) -> _YieldedCall:
    keys = [
        None
        if item is None
        else SequenceKeys(env=as_numpy(item["env"]), start=as_numpy(item["start"]))
        for item in state["keys"]
    ]
    return _YieldedCall(int(state["call_index"]), keys)


class ReplayDataModule(pl.LightningDataModule):
    """Serves :class:`ReplayDataset` (num_workers=0: the replay lives in the trainer process).

    ``level_strides[i]`` = Kⁱ: level i trains on every Kⁱ-th call (ALGORITHM.md §5.2).
    """

    def __init__(self, buffers: list[SequenceBuffer], level_strides: list[int]) -> None:
        super().__init__()
        self.buffers = buffers
        self.dataset = ReplayDataset(buffers, level_strides)

    def train_dataloader(self) -> DataLoader[HierarchyBatch]:
        # batch_size=None: the dataset already yields whole batches; default_convert passes the
        # HierarchyBatch dataclass through unchanged.
        # A generator of its own: creating the iterator draws a base seed, which must not come
        # from the global torch RNG (a resumed run creates it at another point of the stream).
        return DataLoader(
            self.dataset, batch_size=None, num_workers=0, generator=torch.Generator().manual_seed(0)
        )

    def set_call_index(self, call_index: int) -> None:
        """Align the dataset with the module's next training call (see the module docstring).

        Lightning prefetches one batch, so the dataset runs one call ahead of the module; the
        module (via the env-loop callback's ``on_fit_start``) passes its own count of finished
        calls here after a resume, and the prefetched call is yielded again identically.
        """
        self.dataset.set_call_index(call_index)

    def state_dict(self) -> dict[str, Any]:
        """Call counter, remembered keys and every level's replay state (flushes chunk files)."""
        return self.dataset.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state_dict)
