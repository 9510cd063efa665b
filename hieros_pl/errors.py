"""The CLI's error boundary: every expected failure ends as one line on stderr, exit code != 0.

Errors a user can act on (bad config, unknown env, missing dependency, broken checkpoint, locked
or unreadable run dir, full disk, non-finite loss) are reported as ``<prog>: <one line>`` without
a traceback. ``HYDRA_FULL_ERROR=1`` re-raises them so that the traceback is shown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class RunError(Exception):
    """A failure the CLI reports as one line naming the culprit (file, key, id, directory)."""


class CheckpointError(RunError):
    """A checkpoint is missing, truncated, corrupt, or holds a pickled object."""


class RunDirError(RunError):
    """The run dir is unusable: locked by another process, unreadable, or its config changed."""


class EnvError(RunError):
    """The environment cannot be built: unknown id, missing dependency, unsupported space."""


class ProbeError(RunError, ValueError):
    """A probe cannot run on this run or with these options: a level without its own world
    model, a replay without rewarded rows in a part, an out-of-range option. A ValueError too,
    so library callers of the probe functions catch it as bad input."""


EXIT_FAILURE = 1
EXIT_USAGE = 2
"""Exit codes: 2 for configuration and usage errors, 1 for the rest."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (Hydra's hints and blank lines dropped)."""
    text = str(error) or type(error).__name__
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and "HYDRA_FULL_ERROR" not in line]
    return "; ".join(kept) if kept else type(error).__name__


def full_errors() -> bool:
    """``HYDRA_FULL_ERROR=1``: show tracebacks instead of one-line errors."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def describe(error: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for an expected error; None for a bug (keep its traceback)."""
    from omegaconf.errors import OmegaConfBaseException

    from hieros_pl.config import ConfigError

    if isinstance(error, ConfigError | OmegaConfBaseException):
        return f"invalid config: {one_line(error)}", EXIT_USAGE
    if _is_hydra_error(error):
        return f"invalid config: {one_line(error)}", EXIT_USAGE
    if isinstance(error, RunError):
        return one_line(error), EXIT_FAILURE
    if isinstance(error, OSError):
        message = error.strerror or one_line(error)
        return (f"{message}: {error.filename}" if error.filename else message), EXIT_FAILURE
    if isinstance(error, FloatingPointError):  # NonFiniteLossError names the level and term
        return one_line(error), EXIT_FAILURE
    return None


def _is_hydra_error(error: BaseException) -> bool:
    from hydra.errors import HydraException

    return isinstance(error, HydraException)


@contextmanager
def cli_boundary(prog: str) -> Iterator[None]:
    """Turn expected errors into ``SystemExit`` with one line on stderr (see module docstring)."""
    try:
        yield
    except Exception as error:
        described = describe(error)
        if described is None or full_errors():
            raise
        message, code = described
        print(f"{prog}: {message}", file=sys.stderr)
        raise SystemExit(code) from None
