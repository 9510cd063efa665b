"""``hieros-report``: a sweep dir's runs turned into tables, plots and a Markdown report."""

from hieros_pl.report.build import Report, make_report

__all__ = ["Report", "make_report"]
