"""What a run prints: each log line once, and only messages a user can act on.

Lightning adds its own console handler to the ``lightning`` logger, so under Hydra (whose
handlers sit on the root logger and also write ``<run_dir>/train.log``) every Lightning line
appeared twice; it also logs an advertisement, TPU availability and a ``weights_only`` line per
checkpoint, and its internals raise deprecation warnings a user cannot act on.
"""

from __future__ import annotations

import logging
import warnings

NOISE = (
    "💡 Tip:",  # advertises a cloud logger
    "TPU available:",
    "`weights_only` was not set",  # one line per checkpoint written
)
"""Fragments of log messages that are dropped."""


class DropNoise(logging.Filter):
    """Drops records whose message contains one of NOISE."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in NOISE)


def configure_console() -> None:
    """Route Lightning's records through the root handlers only, filter NOISE on every root
    handler, and silence deprecation warnings raised inside Lightning. Call it after the root
    handlers exist (inside the Hydra app)."""
    import lightning  # noqa: F401  # its import attaches the handler removed here

    lightning_logger = logging.getLogger("lightning")
    for handler in list(lightning_logger.handlers):
        lightning_logger.removeHandler(handler)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, DropNoise) for existing in handler.filters):
            handler.addFilter(DropNoise())
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"lightning(\.|$)")
    # HierosModule moves HierarchyBatch itself; Lightning notes that it ignores the datamodule's.
    warnings.filterwarnings("ignore", message=r"You have overridden `transfer_batch_to_device`")
