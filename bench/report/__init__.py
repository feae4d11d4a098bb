"""Reports: result JSONs -> leaderboards (markdown, HTML), plots, statistics, audit, exports."""

from bench.report.build import BuildSummary, build_reports

__all__ = ["BuildSummary", "build_reports"]
