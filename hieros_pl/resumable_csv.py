"""A CSV logger that continues ``metrics.csv`` on resume instead of deleting it.

Lightning's CSV writer removes an existing ``metrics.csv`` when it starts. Here the file is kept:
rows up to the env step the run resumes from stay, rows logged after that checkpoint (by a
process that was killed before its next checkpoint) are dropped, because the resumed run logs
those steps again. New rows are appended; a new column rewrites the header as before.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


def truncate_metrics(path: Path, last_step: int) -> tuple[list[str], int]:
    """Drop the rows of ``path`` whose ``step`` exceeds ``last_step``; returns (header, kept)."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if _step(row) <= last_step]
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)
    return header, len(rows)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:  # a row cut short by a kill mid-write
        return float("inf")


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        if self.resume_step is None:
            path.unlink()  # a fresh run in a dir without a checkpoint starts a new file
            return
        header, _ = truncate_metrics(path, self.resume_step)
        self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` survives a resume from env step ``resume_step``."""

    def __init__(self, save_dir: str, resume_step: int | None, **kwargs: object) -> None:
        super().__init__(save_dir=save_dir, **kwargs)  # type: ignore[arg-type]
        self.resume_step = resume_step

    @property
    def experiment(self) -> ExperimentWriter:
        if not isinstance(self._experiment, _ContinuingWriter):
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(self.log_dir, self.resume_step)
        return self._experiment
