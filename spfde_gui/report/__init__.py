"""Run reports: HTML (figures embedded as SVG), PDF (figures as vectors), the figures
themselves (``figures/``: SVG, PDF and PNG, one file per figure and format), and the raw
metrics as CSV and JSON.

``export_report(run_dir, out_dir)`` is what both the window's Export action and the
headless ``spfde-gui report RUN_DIR --out DIR`` call. It reads the run through
``spfde_gui.model.run_model.RunModel`` (the same replay the window shows), so a report is a
function of ``events.jsonl`` (plus ``config.yaml`` when the stream lacks a configuration).
"""
from __future__ import annotations

from pathlib import Path

from spfde_gui.model.run_model import EVENTS_FILE, RunModel
from spfde_gui.report import builder, metrics

FORMATS = ("html", "pdf", "figures", "csv", "json")
FILE_NAMES = {"html": "report.html", "pdf": "report.pdf", "figures": "figures", "csv": "metrics.csv",
              "json": "metrics.json"}
# CSS pixels. A little under the page body width (A4 less margins at 96 dpi, 660): a figure
# that does not fit the rest of a page moves to the next and leaves a gap, so smaller
# figures leave fewer, shorter gaps (and the configuration flows on, with no page break).
PDF_IMAGE_WIDTH = 600
# The page's own margins come from the PDF writer; the browser's padding would only narrow it.
PDF_CSS = ".page { padding: 0; margin: 0; } .figure { margin: 6px 0 10px 0; }"


class ReportError(ValueError):
    """The run directory cannot be reported on (missing, empty, no events)."""


def load_run(run_dir):
    """The run model of ``run_dir``; ReportError naming the path when there is nothing to read."""
    p = Path(run_dir)
    if not p.exists():
        raise ReportError(f"run directory not found: {p}")
    if not p.is_dir():
        raise ReportError(f"not a run directory (a file): {p}")
    events = p / EVENTS_FILE
    if not events.is_file():
        raise ReportError(f"no {EVENTS_FILE} in {p}: not a run directory, or the run never started")
    model = RunModel.load(p)
    if model.n_events == 0:
        raise ReportError(f"{events} holds no events (empty or unreadable)")
    if model.run_started is None and model.n_epochs == 0:
        raise ReportError(f"{events} has no run_started and no epoch_end event: nothing to report")
    if not model.config:
        model.config = _config_file(p)
    return model


def _config_file(run_dir: Path) -> dict | None:
    import yaml
    f = run_dir / "config.yaml"
    if not f.is_file():
        return None
    try:
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def parse_formats(formats, allowed: tuple[str, ...] = FORMATS, what: str = "report") -> tuple[str, ...]:
    """The chosen formats ("html,pdf" or a list; None: every one of ``allowed``), or a
    ReportError naming the unknown ones (the run, sweep and search reports share it)."""
    if formats is None:
        return allowed
    if isinstance(formats, str):
        formats = [f for f in formats.split(",")]
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in chosen if f not in allowed]
    if bad or not chosen:
        raise ReportError(f"unknown {what} format(s) {', '.join(bad) or '(none given)'}; "
                          f"expected a comma-separated subset of {','.join(allowed)}")
    return chosen


def export_report(run_dir, out_dir, formats=None, model=None) -> dict[str, Path]:
    """Write the report of ``run_dir`` into ``out_dir`` (created); format -> written file.

    ``model``: a RunModel already in memory (the window's live one, whose status knows the
    engine is still running); by default the run is replayed from ``run_dir``."""
    model, chosen, out = prepare(run_dir, out_dir, formats, model)
    figures = render_figures(model, chosen)
    return write_report(None, model, out, chosen, figures)


def prepare(run_dir, out_dir, formats=None, model=None):
    """Checks and the run model: (model, chosen formats, output folder created)."""
    chosen = parse_formats(formats)
    if model is None:
        model = load_run(run_dir)
    elif not model.config:
        model.config = _config_file(Path(run_dir))
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"output path exists and is not a folder: {out}")
    out.mkdir(parents=True, exist_ok=True)
    return model, chosen, out


def render_figures(model, chosen) -> dict:
    """The figures (pyqtgraph, so on the GUI thread); empty when no format shows them."""
    return _figures(model) if {"html", "pdf", "figures"} & set(chosen) else {}


def write_report(state, model, out: Path, chosen, figures: dict) -> dict[str, Path]:
    """Write the chosen formats from rendered figures. No widgets: the window runs this as a
    background task (``state``: its TaskState, for progress and cancellation; or None)."""
    written: dict[str, Path] = {}
    step = lambda i, what: state.set_progress(i / len(chosen), what) if state is not None else None
    for i, fmt in enumerate(chosen):
        if state is not None:
            state.check()
        step(i, f"writing {FILE_NAMES[fmt]}")
        if fmt == "csv":
            written["csv"] = metrics.write_csv(model, out / FILE_NAMES["csv"])
        elif fmt == "json":
            written["json"] = metrics.write_json(model, out / FILE_NAMES["json"])
        elif fmt == "html":
            path = out / FILE_NAMES["html"]
            path.write_text(builder.render_html(model, figures), encoding="utf-8")
            written["html"] = path
        elif fmt == "figures":
            from .export_figure import write_figures  # QtSvg: loaded only for figure files
            folder = out / FILE_NAMES["figures"]
            write_figures({f.file_name: f.svg for f in figures.values()}, folder)
            written["figures"] = folder
        elif fmt == "pdf":
            from .pdf import write_pdf  # Qt (QTextDocument): loaded only for a PDF
            html_text = builder.render_html(model, figures, image_src=lambda f: f"figure/{f.key}.svg",
                                            image_width=PDF_IMAGE_WIDTH, extra_css=PDF_CSS)
            images = {f"figure/{f.key}.svg": f.svg for f in figures.values()}
            written["pdf"] = write_pdf(html_text, images, out / FILE_NAMES["pdf"],
                                       f"SpFDE Studio · {model.name} · {model.status}")
    step(len(chosen), "done")
    return {f: written[f] for f in chosen}


def _figures(model) -> dict:
    from . import figures as figure_set  # Qt and pyqtgraph: loaded only when figures are drawn
    svgs = figure_set.render_all(model, builder.planned_freeze_epochs(model))
    return {key: builder.Figure(key, title, svgs[key], figure_set.FILE_NAMES.get(key, key))
            for key, title in figure_set.FIGURES if key in svgs}
