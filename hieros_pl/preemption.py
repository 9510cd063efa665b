"""Pre-emption signals: remember the signal, stop at the next safe point, then hand it on.

SIGTERM (SLURM pre-emption, ``kill``), SIGUSR1, SIGUSR2 (submitit's time-out/pre-emption signal)
and SIGINT (Ctrl-C) all mean "checkpoint and stop". The handler only records the signal; the
training loop calls :meth:`Preemption.check` at points where its state is consistent (after an
env step of the prefill, after a training call) and the checkpoint callback writes the
checkpoint before :class:`Preempted` unwinds the run. After
:meth:`Preemption.interrupt_at_once` (the final evaluation, which changes nothing a checkpoint
holds) the handler raises at once.

After the checkpoint, :meth:`Preemption.hand_on` calls the handler that was installed before
ours when it is a Python function: under submitit that requeues the job (USR2) and exits.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)


class Preempted(Exception):  # noqa: N818 -- a control-flow signal, not an error
    """Raised at a safe point after a pre-emption signal; the checkpoint is written on the way."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"pre-empted by {signal.Signals(signum).name}")
        self.signum = signum


class Preemption:
    """Installs the handlers of :data:`PREEMPTION_SIGNALS` and tracks the received signal."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}
        self._raise_at_once = False

    def install(self) -> None:
        for signum in PREEMPTION_SIGNALS:
            # signal.signal raises ValueError outside the main thread (e.g. a notebook executor).
            with contextlib.suppress(ValueError):
                self.previous[signum] = signal.signal(signum, self._on_signal)

    def restore(self) -> None:
        self._raise_at_once = False
        for signum, handler in self.previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self.previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if first:
            log.warning(
                "%s received: checkpointing at the next safe point, then stopping",
                signal.Signals(signum).name,
            )
        if self._raise_at_once:
            raise Preempted(signum)

    @property
    def received(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        """Raise :class:`Preempted` if a signal arrived (call where the state is consistent)."""
        if self.signum is not None:
            raise Preempted(self.signum)

    def interrupt_at_once(self) -> None:
        """From now until :meth:`restore`, a signal raises :class:`Preempted` at once."""
        self.check()
        self._raise_at_once = True

    def hand_on(self, signum: int) -> None:
        """Call the handler installed before ours (submitit: requeue and exit), if any."""
        handler = self.previous.get(signum)
        if callable(handler) and handler is not signal.default_int_handler:
            handler(signum, None)
