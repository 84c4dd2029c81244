"""The sweep report: ``spfde-gui report SWEEP_DIR`` (and the results view's Report button).

The paper's table (one row per setting: training FLOPs, final and best test accuracy as
mean ± std over seeds, peak memory, wall time, seeds finished) and the accuracy-vs-FLOPs
scatter with its Pareto front, as HTML (the scatter inline as SVG) and PDF (the scatter as
vectors), plus the table as CSV, Markdown and LaTeX, and the scatter itself in ``figures/``
as SVG, PDF and PNG.
"""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from engine.sweep import export as export_mod
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from spfde_gui.report import ReportError, parse_formats, plots

FORMATS = ("html", "pdf", "figures", "csv", "md", "tex")
FILE_NAMES = {"html": "sweep_report.html", "pdf": "sweep_report.pdf", "figures": "figures", "csv": "results.csv",
              "md": "results.md", "tex": "results.tex"}
SCATTER_NAME = "accuracy_vs_flops_pareto"      # figures/<name>.svg|.pdf|.png


def scatter_points(rows: list[results_mod.Row]) -> list[tuple[float | None, float | None]]:
    """(mean training FLOPs, mean final test accuracy) of each row."""
    return [(r.stats["flops_spent"].mean, r.stats["final_test_acc"].mean) for r in rows]


def scatter_svg(rows: list[results_mod.Row]) -> bytes | None:
    """Accuracy vs training FLOPs, one point per setting (error bars: std over seeds),
    the Pareto front as a line; SVG bytes (a double-column figure, like the run report's)."""
    pts = scatter_points(rows)
    ok = [i for i, (x, y) in enumerate(pts) if x is not None and y is not None]
    if not ok:
        return None
    import numpy as np

    plots.ensure_app()
    with plots._report_options():
        pg = plots._pg()
        win, font = plots._layout(pg)
        plot = win.addPlot()
        plots._style(plot, font, "Final test accuracy vs training FLOPs (mean ± std over seeds)",
                     "training FLOPs", "test accuracy (%)")
        x = np.array([pts[i][0] for i in ok], float)
        y = np.array([pts[i][1] * 100 for i in ok], float)
        err = np.array([(rows[i].stats["final_test_acc"].std or 0.0) * 100 for i in ok], float)
        plot.addItem(pg.ErrorBarItem(x=x, y=y, top=err, bottom=err, pen=pg.mkPen(plots.GREY)))
        plot.plot(x, y, pen=None, symbol="o", symbolBrush=plots.BLUE, symbolPen=None, symbolSize=7)
        front = results_mod.pareto_front(pts)
        if front:
            plot.plot([pts[i][0] for i in front], [pts[i][1] * 100 for i in front],
                      pen=pg.mkPen(plots.ORANGE, width=1.5), symbol="o", symbolBrush=None,
                      symbolPen=pg.mkPen(plots.ORANGE, width=1.5), symbolSize=12, name="Pareto front")
        span = float(x.max() - x.min()) or float(abs(x.max())) or 1.0
        plot.setXRange(float(x.min()) - 0.05 * span, float(x.max()) + 0.08 * span, padding=0)
        for i in ok:     # rows are numbered as in the table
            t = pg.TextItem(f"#{i + 1}", color="#444444", anchor=(-0.2, 1))
            t.setFont(font)
            t.setPos(pts[i][0], pts[i][1] * 100)
            plot.addItem(t)
        return plots._export(win, "Final test accuracy vs training FLOPs")


def _table_html(rows: list[results_mod.Row], varied: list[str]) -> str:
    # a zero-width space after each dot: a narrow column breaks "sparsity.target" at the dot,
    # not as "sparsity.ta / rget"
    head = "".join(f"<th>{html.escape(h).replace('.', '.&#8203;')}</th>"
                   for h in ["#"] + list(varied) + export_mod.HEADERS)
    body = []
    for i, r in enumerate(rows):
        vals = [f"#{i + 1}"] + [export_mod._v(r.setting.get(f)) for f in varied] + export_mod._cells(r, " ± ")
        cls = "" if r.complete else ' class="gap"'
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(v)}</td>" for v in vals) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(m: manifest_mod.Manifest, rows: list[results_mod.Row], svg: bytes | None,
                image_src: str | None = None) -> str:
    n_done = sum(r.completed for r in rows)
    n_cells = sum(r.seeds_total for r in rows)
    n_failed = sum(r.failed for r in rows)
    errors = [e for r in rows for e in r.errors]
    img = ""
    if svg is not None:
        src = image_src or "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        img = f'<p><img src="{src}" width="660" alt="accuracy vs FLOPs" /></p>'
    gaps = ""
    if n_done < n_cells:
        gaps = (f"<p class='warn'>{n_cells - n_done} of {n_cells} cells did not finish ({n_failed} failed): "
                "rows marked in colour average fewer seeds; the seeds column says how many.</p>")
    err_html = ("<h2>Failed cells</h2><ul>" + "".join(f"<li>{html.escape(e)}</li>" for e in errors) + "</ul>") \
        if errors else ""
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sweep {html.escape(m.name)}</title>
<style>body{{font-family:'DejaVu Sans',sans-serif;font-size:10pt;color:#222}}
table{{border-collapse:collapse;margin:8px 0}}th,td{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#f0f2f5}}tr.gap td{{background:#fdf0e6}}.warn{{color:#c0392b}}</style></head><body>
<h1>Sweep {html.escape(m.name)}</h1>
<p>{html.escape(str(m.data.get('description') or ''))}</p>
<p>{len(rows)} setting(s) x {len(m.seeds) or '?'} seed(s) = {n_cells} run(s); {n_done} completed, {n_failed} failed.
Folder: {html.escape(str(m.dir.resolve()))}. Generated {time.strftime('%Y-%m-%d %H:%M')}.</p>
{gaps}
{_base_html(m)}
<h2>Results (mean ± sample std over the seeds that finished)</h2>
{_table_html(rows, m.varied)}
<h2>Accuracy vs training FLOPs</h2>
{img or '<p>No completed cells yet.</p>'}
{err_html}
</body></html>"""


def _base_html(m) -> str:
    """The configuration every cell shares, as a compact two-column table."""
    rows = results_mod.base_fields(m)
    if not rows:
        return ""
    cells = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                    f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<h2>Base configuration (shared by every cell; varied: "
            f"{html.escape(', '.join(m.varied) or 'nothing')}, and the seed)</h2><table>{cells}</table>")


def export_sweep_report(sweep_dir, out_dir=None, formats=None) -> dict[str, Path]:
    """Write the chosen formats (default all) into ``out_dir`` (default SWEEP_DIR/report)."""
    try:
        m = manifest_mod.read(sweep_dir)
    except manifest_mod.SweepError as exc:
        raise ReportError(str(exc)) from None
    chosen = parse_formats(formats, FORMATS, "sweep report")
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = results_mod.load(m)
    written: dict[str, Path] = {}
    for fmt in ("csv", "md", "tex"):
        if fmt in chosen:
            p = out / FILE_NAMES[fmt]
            p.write_text(export_mod.FORMATS[fmt](rows, m.varied), encoding="utf-8")
            written[fmt] = p
    if {"html", "pdf", "figures"} & set(chosen):
        svg = scatter_svg(rows)
        if "html" in chosen:
            p = out / FILE_NAMES["html"]
            p.write_text(render_html(m, rows, svg), encoding="utf-8")
            written["html"] = p
        if "figures" in chosen:
            from spfde_gui.report.export_figure import write_figures  # QtSvg: only for figure files
            write_figures({SCATTER_NAME: svg} if svg is not None else {}, out / FILE_NAMES["figures"])
            written["figures"] = out / FILE_NAMES["figures"]
        if "pdf" in chosen:
            from spfde_gui.report.pdf import write_pdf  # Qt (QTextDocument): only for a PDF
            plots.ensure_app()
            images = {"figure/scatter.svg": svg} if svg is not None else {}
            text = render_html(m, rows, svg, image_src="figure/scatter.svg")
            written["pdf"] = write_pdf(text, images, out / FILE_NAMES["pdf"], f"SpFDE Studio · sweep {m.name}")
    return {f: written[f] for f in chosen}
