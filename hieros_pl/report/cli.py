"""``hieros-report SWEEP_DIR [--out DIR]``: tables, figures and a Markdown report of a sweep."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hieros-report", description=__doc__)
    parser.add_argument("sweep_dir", type=Path, help="a sweep dir (or any dir holding run dirs)")
    parser.add_argument("--out", type=Path, default=None, help="default: SWEEP_DIR/report")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples per CI")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    args = parser.parse_args(argv)
    from hieros_pl.report.build import make_report

    try:
        report = make_report(args.sweep_dir, args.out, args.reps, args.seed)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"hieros-report: {error}")
    finished = sum(run.finished for run in report.runs)
    print(f"{len(report.runs)} runs ({finished} finished), report: {report.markdown}")


if __name__ == "__main__":
    main()
