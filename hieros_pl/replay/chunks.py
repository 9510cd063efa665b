"""Chunk files of a replay buffer: ``<directory>/env{e}/chunk_{n:06d}.npz`` (DESIGN.md §4.7).

Chunk n of stream e holds that stream's steps n·chunk_size … (n+1)·chunk_size − 1, one
uncompressed array per field with the step as the leading axis. A partial chunk (written by a
flush) holds a prefix of those steps and is overwritten once the chunk is complete. Writes are
atomic (temporary name, then ``os.replace``), so a crash never leaves a truncated chunk behind;
a chunk that is truncated anyway (a copied run dir, a failing disk) raises an error naming it.
"""

from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path

import numpy as np

from hieros_pl.errors import CheckpointError


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
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        raise CheckpointError(
            f"replay chunk file {path} is truncated or corrupt ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'unreadable'}); the replay cannot be "
            "restored from this run dir"
        ) from error


def delete_chunks(directory: Path, env: int, first: int, stop: int) -> None:
    """Remove the chunk files ``first`` … ``stop`` − 1 of stream ``env`` (missing ones skipped)."""
    for chunk in range(first, stop):
        chunk_path(directory, env, chunk).unlink(missing_ok=True)
