"""Chunk files of a replay buffer: ``<directory>/env{e}/chunk_{n:06d}.npz`` (DESIGN.md §4.7).

Chunk n of stream e holds that stream's steps n·chunk_size … (n+1)·chunk_size − 1, one
uncompressed array per field with the step as the leading axis. A partial chunk (written by a
flush) holds a prefix of those steps and is overwritten once the chunk is complete. Writes are
atomic (temporary name, then ``os.replace``), so a crash never leaves a truncated chunk behind.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np


def chunk_path(directory: Path, env: int, chunk: int) -> Path:
    """Path of chunk ``chunk`` of environment stream ``env``."""
    return directory / f"env{env}" / f"chunk_{chunk:06d}.npz"


def write_chunk(directory: Path, env: int, chunk: int, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write ``arrays`` (field -> [steps, *shape]) as one chunk file.

    A full disk raises ``OSError(ENOSPC)`` whose message names the replay directory.
    """
    path = chunk_path(directory, env, chunk)
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as file:
            np.savez(file, allow_pickle=False, **arrays)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise OSError(
                errno.ENOSPC,
                f"no space left for the replay chunk files in {directory} (writing {path.name}); "
                "free disk space or point run_dir to a larger disk",
            ) from error
        raise


def read_chunk(directory: Path, env: int, chunk: int) -> dict[str, np.ndarray]:
    """Read one chunk file (field -> [steps, *shape]); a missing file raises FileNotFoundError."""
    path = chunk_path(directory, env, chunk)
    if not path.is_file():
        raise FileNotFoundError(
            f"replay chunk file {path} is missing: the checkpoint's replay cursor needs it to "
            "restore the buffer (was the run dir moved or cleaned?)"
        )
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}
