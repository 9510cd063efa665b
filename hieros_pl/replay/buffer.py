"""One level's replay: a preallocated ring per env stream plus sequence keys (ALGORITHM.md §6.1).

Steps arrive in time order per environment stream; episodes are not separated. Once a stream holds
T steps, every new step creates the key of the sequence made of its last T steps (stride 1). Keys
are kept in insertion order across streams (index 0 = oldest), which is the age order the
samplers rely on. When a stream's ring wraps, the one key whose window contained the overwritten
step is removed, so a sampled sequence never straddles the write head. With an ``env_mask``
streams advance at different rates and the removed key may sit behind other streams' older keys;
it is then removed from the middle of the key queue, which keeps the order of the rest.

Every ``chunk_size`` steps of a stream are written to a chunk file (``replay/chunks.py``);
``state_dict`` flushes the partial chunks and returns only cursors, keys, visit counts, the sampler
settings and the generator state, and ``load_state_dict`` refills the rings from the chunk files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hieros_pl.config import ReplayConfig
from hieros_pl.data.batch import Batch
from hieros_pl.replay.chunks import delete_chunks, read_chunk, write_chunk
from hieros_pl.replay.samplers import make_sampler

FIELDS = (
    "obs",
    "action",
    "reward",
    "is_first",
    "is_last",
    "is_terminal",
    "subgoal",
    "subgoal_code",
)
"""Stored fields, named like the fields of :class:`Transition` and :class:`Batch`."""
STATE_FORMAT = 1
INITIAL_ROWS = 1024
"""Rows per stream allocated at first; the rings double until they reach replay.capacity."""


@dataclass(frozen=True)
class FieldSpec:
    """Shape (without the env or time axis) and dtype of one stored field."""

    shape: tuple[int, ...]
    dtype: np.dtype


def step_spec(
    obs_shape: tuple[int, ...],
    obs_dtype: np.dtype | type,
    action_dim: int,
    subgoal_dim: int,
    code_dim: int,
) -> dict[str, FieldSpec]:
    """Field specs of one level's rows: obs (uint8 image or float32 vector), A, Dg, Gc widths."""
    obs_dtype = np.dtype(obs_dtype)
    if obs_dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
        raise ValueError(f"obs_dtype must be uint8 (images) or float32 (vectors), got {obs_dtype}")
    float32, boolean = np.dtype(np.float32), np.dtype(np.bool_)
    return {
        "obs": FieldSpec(tuple(obs_shape), obs_dtype),
        "action": FieldSpec((action_dim,), float32),
        "reward": FieldSpec((), float32),
        "is_first": FieldSpec((), boolean),
        "is_last": FieldSpec((), boolean),
        "is_terminal": FieldSpec((), boolean),
        "subgoal": FieldSpec((subgoal_dim,), float32),
        "subgoal_code": FieldSpec((code_dim,), float32),
    }


@dataclass
class Transition:
    """One step of E environment streams (numpy); row layout of ``data/batch.py``.

    obs [E, *obs_shape] uint8|float32; action [E, A] float32; reward [E] float32;
    is_first, is_last, is_terminal [E] bool; subgoal [E, Dg] float32; subgoal_code [E, Gc] float32.
    """

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    is_first: np.ndarray
    is_last: np.ndarray
    is_terminal: np.ndarray
    subgoal: np.ndarray
    subgoal_code: np.ndarray


@dataclass(frozen=True)
class SequenceKeys:
    """Sequences chosen for a batch: stream ``env`` [B] and absolute first step ``start`` [B]."""

    env: np.ndarray
    start: np.ndarray


def as_numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    """A state-dict array (torch tensor, or numpy from older states) as a numpy array."""
    return array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


class KeyQueue:
    """Live sequence keys in insertion order, with their visit counts.

    A deque on a flat array of twice the maximum size: appends go to the tail, and when the tail
    reaches the end the live region is moved to the front (amortised O(1)). Removing a key shifts
    only the keys older than it, which is nothing when streams advance together.
    """

    def __init__(self, max_keys: int) -> None:
        size = 2 * max(max_keys, 1)
        # np.zeros maps untouched pages lazily, so a 1e6-key queue costs memory only as it fills.
        self.serial = np.zeros(size, dtype=np.int64)
        self.env = np.zeros(size, dtype=np.int64)
        self.start = np.zeros(size, dtype=np.int64)
        self.visits = np.zeros(size, dtype=np.int64)
        self.head = 0
        self.tail = 0

    def __len__(self) -> int:
        return self.tail - self.head

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return self.serial, self.env, self.start, self.visits

    def append(self, serial: int, env: int, start: int) -> None:
        if self.tail == len(self.serial):
            count = len(self)
            for array in self._arrays():
                array[:count] = array[self.head : self.tail]
            self.head, self.tail = 0, count
        self.serial[self.tail], self.env[self.tail], self.start[self.tail] = serial, env, start
        self.visits[self.tail] = 0
        self.tail += 1

    def remove(self, serial: int) -> None:
        """Remove the key with this serial; the older keys move one slot towards the tail."""
        position = self.head + int(np.searchsorted(self.serial[self.head : self.tail], serial))
        assert position < self.tail and self.serial[position] == serial, f"no key {serial}"
        if position > self.head:
            for array in self._arrays():
                array[self.head + 1 : position + 1] = array[self.head : position].copy()
        self.head += 1

    def live(self) -> dict[str, np.ndarray]:
        """Views of the live keys, oldest first: serial, env, start, visits [N]."""
        region = slice(self.head, self.tail)
        return {
            "serial": self.serial[region],
            "env": self.env[region],
            "start": self.start[region],
            "visits": self.visits[region],
        }

    def restore(self, live: dict[str, np.ndarray]) -> None:
        count = len(live["serial"])
        for name, array in zip(("serial", "env", "start", "visits"), self._arrays()):
            array[:count] = live[name]
        self.head, self.tail = 0, count


class SequenceBuffer:
    """Replay of one hierarchy level over E environment streams; samples [B, T] batches.

    ``capacity`` steps are kept per stream; N ≤ E·(capacity − T + 1) keys. ``seed`` seeds the
    numpy generator of all draws. ``directory`` receives the chunk files (None: memory only, and
    the buffer cannot be restored). ``etbs_scale_by_capacity`` is compat D4.
    """

    def __init__(
        self,
        cfg: ReplayConfig,
        spec: dict[str, FieldSpec],
        num_envs: int,
        seed: int,
        directory: Path | None,
        etbs_scale_by_capacity: bool = False,
    ) -> None:
        if set(spec) != set(FIELDS):
            raise ValueError(f"spec must have exactly the fields {list(FIELDS)}, got {list(spec)}")
        if not 1 <= cfg.batch_length <= cfg.capacity:
            raise ValueError(
                f"replay.batch_length ({cfg.batch_length}) must be in [1, replay.capacity "
                f"({cfg.capacity})]"
            )
        self.cfg = cfg
        self.spec = spec
        self.num_envs = num_envs
        self.directory = None if directory is None else Path(directory)
        self.sampler = make_sampler(cfg, etbs_scale_by_capacity)
        self.rng = np.random.default_rng(seed)
        E, C, T = num_envs, cfg.capacity, cfg.batch_length
        # Grown on demand: a paper-size ring (1e6 steps of 64×64×3 or of stacked latents) would
        # need 12-20 GB per level up front, and a 100k-step run fills a tenth of it.
        self.rings = {
            name: np.zeros((E, min(C, INITIAL_ROWS), *field.shape), dtype=field.dtype)
            for name, field in spec.items()
        }
        self.pending_chunk = {
            name: np.zeros((E, cfg.chunk_size, *field.shape), dtype=field.dtype)
            for name, field in spec.items()
        }
        self.steps_written = np.zeros(E, dtype=np.int64)
        self.keys = KeyQueue(E * (C - T + 1))
        self.key_serial_by_start = np.zeros((E, C), dtype=np.int64)
        self.next_serial = 0
        # Chunk files below these indices are needed neither by the ring nor by the last saved
        # state (the checkpoint on disk); the next state_dict deletes them.
        self.saved_first_chunk = np.zeros(E, dtype=np.int64)
        self.deleted_below = np.zeros(E, dtype=np.int64)

    # ------------------------------------------------------------------------------------------
    # writing

    def add(self, step: Transition, env_mask: np.ndarray | None = None) -> None:
        """Append one row to the stream of every env in ``env_mask`` ([E] bool; None = all)."""
        E, C, chunk_size = self.num_envs, self.cfg.capacity, self.cfg.chunk_size
        mask = np.ones(E, dtype=bool) if env_mask is None else np.asarray(env_mask)
        assert mask.shape == (E,) and mask.dtype == np.bool_, f"env_mask {mask.shape} {mask.dtype}"
        self._check_transition(step)
        envs = np.flatnonzero(mask)
        written = self.steps_written[envs]
        if len(envs):
            self._grow_rings(int(written.max()) + 1)
        for name in FIELDS:
            value = getattr(step, name)[envs]
            self.rings[name][envs, written % C] = value
            self.pending_chunk[name][envs, written % chunk_size] = value
        for env in envs:
            self._advance_stream(int(env))

    def _grow_rings(self, rows: int) -> None:
        """Make every ring hold at least min(rows, capacity) rows per stream (doubling).

        Before a ring wraps, step s lives at row s, so growing is a copy of the filled prefix.
        """
        allocated = self.rings["reward"].shape[1]
        if rows <= allocated:
            return
        size = allocated
        while size < rows:
            size *= 2
        size = min(size, self.cfg.capacity)
        for name, ring in self.rings.items():
            grown = np.zeros((ring.shape[0], size, *ring.shape[2:]), dtype=ring.dtype)
            grown[:, :allocated] = ring
            self.rings[name] = grown

    def _check_transition(self, step: Transition) -> None:
        for name in FIELDS:
            value, field = getattr(step, name), self.spec[name]
            expected = (self.num_envs, *field.shape)
            assert value.shape == expected, f"{name} {value.shape} != {expected}"
            assert value.dtype == field.dtype, f"{name} {value.dtype} != {field.dtype}"

    def _advance_stream(self, env: int) -> None:
        """Count the row just stored for ``env``: evict, create a key, complete a chunk."""
        C, T, chunk_size = self.cfg.capacity, self.cfg.batch_length, self.cfg.chunk_size
        step = int(self.steps_written[env])
        if step >= C:
            # Step `step - C` was just overwritten: only the window starting there contained it
            # (the windows starting earlier were removed when their first step was overwritten).
            self.keys.remove(int(self.key_serial_by_start[env, (step - C) % C]))
        self.steps_written[env] = step + 1
        if step + 1 >= T:
            start = step + 1 - T
            self.key_serial_by_start[env, start % C] = self.next_serial
            self.keys.append(self.next_serial, env, start)
            self.next_serial += 1
        if self.directory is not None and (step + 1) % chunk_size == 0:
            self._write_pending_chunk(env, chunk_size)

    def _write_pending_chunk(self, env: int, rows: int) -> None:
        assert self.directory is not None
        chunk = (int(self.steps_written[env]) - 1) // self.cfg.chunk_size
        arrays = {name: self.pending_chunk[name][env, :rows] for name in FIELDS}
        write_chunk(self.directory, env, chunk, arrays)

    def flush(self) -> None:
        """Write every stream's partial current chunk (complete chunks are already on disk)."""
        if self.directory is None:
            return
        for env in range(self.num_envs):
            rows = int(self.steps_written[env]) % self.cfg.chunk_size
            if rows:
                self._write_pending_chunk(env, rows)

    # ------------------------------------------------------------------------------------------
    # sampling

    def num_sequences(self) -> int:
        """N: sequences that can be sampled now."""
        return len(self.keys)

    def ready(self) -> bool:
        """At least B sequences stored (ALGORITHM.md §6.1: training starts then)."""
        return self.num_sequences() >= self.cfg.batch_size

    def total_steps(self) -> int:
        """Rows ever stored, summed over streams (including overwritten ones)."""
        return int(self.steps_written.sum())

    def sample(self) -> Batch:
        """Draw B keys with the sampler and gather them: a [B, T] batch, ``is_first[:, 0]`` True."""
        return self.gather(self.draw())

    def draw(self) -> SequenceKeys:
        """Choose B live keys with the sampler and count their visits."""
        if self.num_sequences() == 0:
            raise RuntimeError(
                f"cannot sample: the replay holds no sequence of replay.batch_length "
                f"({self.cfg.batch_length}) steps yet"
            )
        live = self.keys.live()
        indices = self.sampler.indices(self.rng, live["visits"], self.cfg.batch_size)
        np.add.at(live["visits"], indices, 1)
        return SequenceKeys(env=live["env"][indices].copy(), start=live["start"][indices].copy())

    def holds(self, keys: SequenceKeys) -> bool:
        """Whether every sequence of ``keys`` is still stored (not overwritten, fully written)."""
        written = self.steps_written[keys.env]
        starts = keys.start
        T, C = self.cfg.batch_length, self.cfg.capacity
        return bool(np.all((starts >= written - C) & (starts + T <= written) & (starts >= 0)))

    def gather(self, keys: SequenceKeys) -> Batch:
        """The [B, T] batch of the sequences ``keys`` (see ``data/batch.py`` for the row layout)."""
        # keys.env, keys.start: [B] int64   -> Batch [B, T]
        assert keys.env.shape == keys.start.shape, f"keys {keys.env.shape} {keys.start.shape}"
        assert self.holds(keys), "keys name sequences that are no longer stored"
        T, C = self.cfg.batch_length, self.cfg.capacity
        positions = (keys.start[:, None] + np.arange(T)) % C  # [B, T]
        envs = keys.env[:, None]  # [B, 1]
        fields = {name: self.rings[name][envs, positions] for name in FIELDS}
        fields["is_first"][:, 0] = True
        return Batch(**{name: torch.from_numpy(value) for name, value in fields.items()})

    def stream(self, env: int) -> dict[str, np.ndarray]:
        """The stored rows of stream ``env`` in time order: its last min(written, capacity)."""
        # -> {field: [n, *field.shape]}, n = min(steps_written[env], capacity)
        written, C = int(self.steps_written[env]), self.cfg.capacity
        positions = np.arange(max(0, written - C), written) % C
        return {name: self.rings[name][env, positions] for name in FIELDS}

    def visit_deciles(self) -> np.ndarray:
        """[10] mean visits of each age decile of the live keys (oldest first) / overall mean.

        NaN while fewer than 10 keys exist or nothing has been sampled (ALGORITHM.md §6.2).
        """
        visits = self.keys.live()["visits"].astype(np.float64)
        if len(visits) < 10 or visits.sum() == 0:
            return np.full(10, np.nan)
        means = np.array([part.mean() for part in np.array_split(visits, 10)])
        return means / visits.mean()

    # ------------------------------------------------------------------------------------------
    # state

    def state_dict(self) -> dict[str, Any]:
        """Flush, then return cursors, keys, visit counts, sampler settings and generator state.

        Arrays are torch tensors and the rest plain Python values, so that the checkpoint loads
        with ``torch.load(weights_only=True)``, the default under which Lightning resumes.
        """
        self.flush()
        self._delete_overwritten_chunks()
        live = self.keys.live()
        return {
            "format": STATE_FORMAT,
            "num_envs": self.num_envs,
            "capacity": self.cfg.capacity,
            "batch_length": self.cfg.batch_length,
            "chunk_size": self.cfg.chunk_size,
            "steps_written": torch.from_numpy(self.steps_written.copy()),
            "keys": {name: torch.from_numpy(array.copy()) for name, array in live.items()},
            "next_serial": self.next_serial,
            "sampler": self.sampler.state_dict(),
            "rng": self.rng.bit_generator.state,
        }

    def first_needed_chunk(self, env: int) -> int:
        """The oldest chunk of ``env`` that still holds a row of the ring."""
        written = int(self.steps_written[env])
        return max(0, written - self.cfg.capacity) // self.cfg.chunk_size

    def _delete_overwritten_chunks(self) -> None:
        """Bounded disk: delete chunks whose rows the ring overwrote before the last saved state.

        The checkpoint on disk until the new one replaces it needs the chunks from its own first
        needed one on, so deletion lags one state behind: disk use per stream stays below
        capacity + the steps between two checkpoints + two chunks.
        """
        if self.directory is None:
            return
        for env in range(self.num_envs):
            stop = int(self.saved_first_chunk[env])
            if stop > self.deleted_below[env]:
                delete_chunks(self.directory, env, int(self.deleted_below[env]), stop)
                self.deleted_below[env] = stop
            self.saved_first_chunk[env] = self.first_needed_chunk(env)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`, reloading the last ``capacity`` steps per stream."""
        self._check_compatible(state)
        steps_written = as_numpy(state["steps_written"])
        if steps_written.any():
            if self.directory is None:
                raise ValueError("this replay has no directory: its steps cannot be reloaded")
            self._grow_rings(int(steps_written.max()))
            for env in range(self.num_envs):
                self._reload_stream(self.directory, env, int(steps_written[env]))
        self.steps_written = steps_written.copy()
        self.saved_first_chunk = np.array(
            [self.first_needed_chunk(env) for env in range(self.num_envs)], dtype=np.int64
        )
        live = {name: as_numpy(array) for name, array in state["keys"].items()}
        self.keys.restore(live)
        self.key_serial_by_start[live["env"], live["start"] % self.cfg.capacity] = live["serial"]
        self.next_serial = int(state["next_serial"])
        self.rng.bit_generator.state = state["rng"]

    def _check_compatible(self, state: dict[str, Any]) -> None:
        ours = {
            "format": STATE_FORMAT,
            "num_envs": self.num_envs,
            "capacity": self.cfg.capacity,
            "batch_length": self.cfg.batch_length,
            "chunk_size": self.cfg.chunk_size,
            "sampler": self.sampler.state_dict(),
        }
        for key, value in ours.items():
            if state.get(key) != value:
                raise ValueError(
                    f"replay state does not match this buffer: {key} is {state.get(key)!r} in "
                    f"the checkpoint and {value!r} here (replay.* and env.num_envs must not "
                    "change on resume)"
                )

    def _reload_stream(self, directory: Path, env: int, written: int) -> None:
        """Copy steps [written − capacity, written) of ``env`` from its chunks into the ring.

        The rows of the current partial chunk also go back to the pending chunk, from its first
        row on (which may lie before the ring's window when chunk_size > capacity), so that the
        complete chunk file is written correctly later.
        """
        C, chunk_size = self.cfg.capacity, self.cfg.chunk_size
        first = max(0, written - C)
        current = written // chunk_size
        for chunk in range(first // chunk_size, -(-written // chunk_size)):
            arrays = read_chunk(directory, env, chunk)
            begin, end = chunk * chunk_size, min((chunk + 1) * chunk_size, written)
            self._check_chunk(arrays, env, chunk, end - begin)
            wanted = np.arange(max(begin, first), end)
            for name in FIELDS:
                rows = arrays[name][: end - begin]
                self.rings[name][env, wanted % C] = rows[wanted - begin]
                if chunk == current:
                    self.pending_chunk[name][env, : end - begin] = rows

    def _check_chunk(self, arrays: dict[str, np.ndarray], env: int, chunk: int, rows: int) -> None:
        for name in FIELDS:
            field = self.spec[name]
            if name not in arrays:
                raise ValueError(f"replay chunk {chunk} of env {env} has no field '{name}'")
            value = arrays[name]
            if value.shape[1:] != field.shape or value.dtype != field.dtype or len(value) < rows:
                raise ValueError(
                    f"replay chunk {chunk} of env {env}: field '{name}' is {value.dtype} "
                    f"{value.shape}, expected at least {rows} rows of {field.dtype} {field.shape}"
                )
