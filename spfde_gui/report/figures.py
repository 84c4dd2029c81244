"""Every figure of a run's report, in order: the run's own plots (``plots``) and the
Section 3 analyses (``analysis_plots``), drawn off screen and returned as SVG bytes, and
the name of each one's files in the report's ``figures/`` folder (what it shows)."""
from __future__ import annotations

from spfde_gui.report import analysis_plots
from spfde_gui.report.plots import (
    _report_options,
    accuracy_loss,
    accuracy_vs_flops,
    ensure_app,
    flops_by_source,
    freeze_timeline,
    sieve_sizes,
)

FIGURES = (
    ("accuracy_loss", "Accuracy and loss against epoch"),
    ("accuracy_flops", "Accuracy against cumulative training FLOPs"),
    ("flops_sources", "Training FLOPs by source"),
    ("freeze_timeline", "Freeze timeline"),
    ("sieve", "Data sieve"),
    ("analysis_cka", "CKA of block outputs over training (Fig. 1b)"),
    ("analysis_similarity", "Structural similarity of sparse layers (Fig. 1a)"),
    ("analysis_grad", "Block gradient norms (Fig. 3b)"),
)

# figures/<name>.svg|.pdf|.png: named for what the figure shows
FILE_NAMES = {
    "accuracy_loss": "accuracy_loss",
    "accuracy_flops": "accuracy_vs_flops",
    "flops_sources": "flops_by_technique",
    "freeze_timeline": "freeze_timeline",
    "sieve": "sieve_sizes",
    "analysis_cka": "cka_heatmap",
    "analysis_similarity": "mask_similarity_heatmap",
    "analysis_grad": "gradient_norms",
}


def render_all(model, planned_freeze: dict[str, int] | None = None) -> dict[str, bytes]:
    """Every figure that has data, as SVG bytes keyed by figure id."""
    ensure_app()
    with _report_options():
        out = {
            "accuracy_loss": accuracy_loss(model),
            "accuracy_flops": accuracy_vs_flops(model),
            "flops_sources": flops_by_source(model),
            "freeze_timeline": freeze_timeline(model, planned_freeze),
            "sieve": sieve_sizes(model),
        }
        out.update(analysis_plots.render(model))
    return {k: v for k, v in out.items() if v}
