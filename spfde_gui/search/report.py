"""The search report: ``spfde-gui report SEARCH_DIR`` (and the Search tab's Report button).

The advice (best configuration, accuracy over seeds, FLOPs split by technique, distance
from plain MEST, time), the trials table, the optimisation history, accuracy vs FLOPs with
the budget line and the Pareto front, and the parameter importances; HTML with the figures
inline as SVG, and PDF (the same page laid out by the run report's PDF writer, figures
rasterised at twice their size). Read from the folder's ``trials.json`` alone.
"""
from __future__ import annotations

import html
import json
import time
from pathlib import Path

from engine.search import advice as advice_mod
from spfde_gui.report import ReportError, parse_formats, plots
from spfde_gui.search import figures

FORMATS = ("html", "pdf", "json")
FILE_NAMES = {"html": "search_report.html", "pdf": "search_report.pdf", "json": "search_trials.json"}
COLUMNS = ("trial", "state", "settings", "planned FLOPs", "test acc", "pruned at", "reason")


def is_search_dir(path: str | Path) -> bool:
    return (Path(path) / "search.yaml").is_file()


def figure_set(snap: dict) -> dict[str, str]:
    rows = snap["trials"]
    return {"history": figures.history_svg(rows),
            "scatter": figures.scatter_svg(rows, (snap.get("budget") or {}).get("flops")),
            "importances": figures.importances_svg(snap.get("importances") or {})}


def _v(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table_rows(snap: dict) -> list[list[str]]:
    out = []
    for r in snap["trials"]:
        acc = r.get("test_acc")
        seeds = r.get("test_acc_seeds") or []
        acc_s = "-" if acc is None else f"{100 * acc:.2f}%" + (f" ({len(seeds)} seeds)" if len(seeds) > 1 else "")
        out.append([f"#{r['trial']}" + (" (plain MEST)" if r.get("reference") else ""), r["state"],
                    ", ".join(f"{k}={_v(v)}" for k, v in (r.get("params") or {}).items()),
                    f"{r['flops']:.3g}" if r.get("flops") else "-", acc_s,
                    "-" if r.get("pruned_epoch") is None else f"epoch {r['pruned_epoch']}", r.get("reason") or ""])
    return out


def render_html(snap: dict, images: dict[str, str] | None = None) -> str:
    """The page; figures inline as SVG, or as ``<img src=...>`` for the names in ``images``."""
    adv = advice_mod.advice(snap["trials"], snap.get("reference"))
    advice_lines = advice_mod.format_advice(adv, snap.get("budget"))
    figs = figure_set(snap)
    counts: dict[str, int] = {}
    for r in snap["trials"]:
        counts[r["state"]] = counts.get(r["state"], 0) + 1

    def fig(name: str, alt: str) -> str:
        if images is not None:
            return f'<p><img src="{images[name]}" width="560" alt="{alt}" /></p>'
        return f"<p>{figs[name]}</p>"

    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(snap))
    space = ", ".join(f"{k} in {v}" for k, v in (snap.get("space") or {}).items())
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>Search {html.escape(snap['name'])}</title>
<style>body{{font-family:'DejaVu Sans',sans-serif;font-size:10pt;color:#222}}
table{{border-collapse:collapse;margin:8px 0}}th,td{{border:1px solid #ccc;padding:3px 6px;text-align:left}}
th{{background:#f0f2f5}}pre{{background:#f7f8fa;padding:6px;white-space:pre-wrap}}</style></head><body>
<h1>Budget search {html.escape(snap['name'])}</h1>
<p>Space: {html.escape(space)}. Budget: {html.escape((snap.get('budget') or {}).get('text', '?'))}.
{len(snap['trials'])} trials ({html.escape(', '.join(f'{n} {k}' for k, n in counts.items()))}; the infeasible
ones were refused before training and do not count towards the {snap.get('trials_requested', '?')} trained
trials requested); objective {html.escape(' and '.join(snap.get('objectives') or []))}.
Generated {time.strftime('%Y-%m-%d %H:%M')} from {html.escape(str(snap.get('folder', '')))}.</p>
<h2>Advice</h2>
<pre>{html.escape(chr(10).join(advice_lines))}</pre>
<h2>Optimisation history</h2>
{fig('history', 'optimisation history')}
<h2>Accuracy vs training FLOPs</h2>
{fig('scatter', 'accuracy vs FLOPs')}
<h2>Parameter importances</h2>
{fig('importances', 'parameter importances')}
<h2>Trials</h2>
<table><tr>{head}</tr>{body}</table>
</body></html>"""


def export_search_report(folder: str | Path, out_dir: str | Path | None = None,
                         formats: str | tuple | None = None) -> dict[str, Path]:
    snap = advice_mod.read_snapshot(folder)
    if snap is None:
        raise ReportError(f"{folder} holds no {advice_mod.SNAPSHOT}: run the search (spfde-train search FILE) "
                          "or its --report first")
    snap["folder"] = str(Path(folder).resolve())
    chosen = parse_formats(formats, FORMATS, "search report")
    out = Path(out_dir) if out_dir is not None else Path(folder) / "report"
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if "html" in chosen:
        written["html"] = out / FILE_NAMES["html"]
        written["html"].write_text(render_html(snap), encoding="utf-8")
    if "json" in chosen:
        written["json"] = out / FILE_NAMES["json"]
        written["json"].write_text(json.dumps(snap, indent=1, default=str), encoding="utf-8")
    if "pdf" in chosen:
        from spfde_gui.report.pdf import write_pdf  # Qt (QTextDocument): only for a PDF
        plots.ensure_app()
        names = {k: f"figure/{k}.svg" for k in figure_set(snap)}       # drawn as vectors by write_pdf
        svgs = {names[k]: svg.encode("utf-8") for k, svg in figure_set(snap).items()}
        written["pdf"] = write_pdf(render_html(snap, names), svgs, out / FILE_NAMES["pdf"],
                                   f"SpFDE Studio · search {snap['name']}")
    return {f: written[f] for f in chosen}
