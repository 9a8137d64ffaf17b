"""Evaluation: physics metrics (pure functions), plots (matplotlib/mplhep, lazy), comparison tables
and one-page reports. matplotlib is only imported when a plot is drawn."""

from hepnn.evaluate.compare import compare_runs, to_csv, to_markdown, to_rich_table
from hepnn.evaluate.metrics import (
    accuracy,
    auc,
    background_rejection,
    binned_response,
    classification_metrics,
    ks_overtraining,
    mean_std_over_seeds,
    paired_bootstrap,
    regression_metrics,
    rejection_at,
    roc_curve,
)
from hepnn.evaluate.plots import (
    plot_distributions,
    plot_history,
    plot_response,
    plot_roc,
    plot_scores,
)
from hepnn.evaluate.report import write_comparison_report, write_report

__all__ = [
    "accuracy",
    "auc",
    "background_rejection",
    "binned_response",
    "classification_metrics",
    "compare_runs",
    "ks_overtraining",
    "mean_std_over_seeds",
    "paired_bootstrap",
    "plot_distributions",
    "plot_history",
    "plot_response",
    "plot_roc",
    "plot_scores",
    "regression_metrics",
    "rejection_at",
    "roc_curve",
    "to_csv",
    "to_markdown",
    "to_rich_table",
    "write_comparison_report",
    "write_report",
]
