"""Robustness reports: versioned JSON schema, statistics, tables, exports."""

from robustrec.reports.schema import (FORMAT, SCHEMA_VERSION, ReportError, load_report, report_path, save_report,
                                      validate)

__all__ = ["FORMAT", "SCHEMA_VERSION", "ReportError", "load_report", "report_path", "save_report", "validate"]
