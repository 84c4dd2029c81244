"""The report's content: a run model summarised into tables, rendered into the HTML template.

Pure Python (no Qt): the figures arrive as SVG bytes from ``plots.py``. The same HTML
feeds the browser file (SVG images as data URIs) and the PDF (each image replaced by the
SVG drawn as vectors, ``pdf.py``), so the layout sticks to what both understand: headings, paragraphs and
tables, no flexbox or grid.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from engine import assets
from engine.freezing.schedule import saving_text
from engine.run.payloads import read_flops
from spfde_gui.model import analysis_data as AD

TEMPLATE = assets.path("report_template.html")

FLOP_SOURCES = (("sparsity", "Saved by sparsity"), ("freeze", "Saved by layer freezing"),
                ("sieve", "Saved by data sieving"))


# ------------------------------------------------------------------ formatting
# One definition each, shared with the window (spfde_gui.fmt); FLOPs in tables use the
# paper's notation.
from spfde_gui.fmt import MISSING, fmt_bytes, fmt_pct, fmt_seconds  # noqa: E402,F401
from spfde_gui.fmt import finite as _finite  # noqa: E402
from spfde_gui.fmt import fmt_flops_sci as fmt_flops  # noqa: E402
from spfde_gui.fmt import shown_epoch as _ep  # noqa: E402  (epochs counted from 1, as in the studio)


def fmt_acc(x: Any) -> str:
    """Accuracies are fractions on the wire; shown as percentages."""
    if not _finite(x):
        return "–"
    return fmt_pct(x * 100 if x <= 1.0 else x, 2)


def fmt_num(x: Any, digits: int = 4) -> str:
    if not _finite(x):
        return "–"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.{digits}g}"


def fmt_value(v: Any) -> str:
    """A configuration value as written in YAML."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _fmt_time(t: Any, seconds: bool = False) -> str:
    if not _finite(t):
        return "–"
    return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------ tables
@dataclass
class Table:
    """Rows of cells; ``numeric`` marks right-aligned columns."""
    header: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)
    css: str = "data"
    strong_rows: set[int] = field(default_factory=set)

    def html(self) -> str:
        num = self.numeric or [False] * len(self.header)
        out = [f'<table class="{self.css}" cellspacing="0" cellpadding="4" width="100%">', "<tr>"]
        for h, n in zip(self.header, num):
            out.append(f'<th align="{"right" if n else "left"}" class="{"num" if n else "txt"}">{html.escape(h)}</th>')
        # No <thead>: QTextDocument repeats a header on the next page even when only the
        # table's bottom margin spills over, leaving a stray header strip on the PDF.
        out.append("</tr>")
        for i, row in enumerate(self.rows):
            cls = ' class="total"' if i in self.strong_rows else ""
            out.append(f"<tr{cls}>")
            for cell, n in zip(row, num):
                text = html.escape(cell)
                if i in self.strong_rows:
                    text = f"<b>{text}</b>"
                out.append(f'<td align="{"right" if n else "left"}" class="{"num" if n else "txt"}">{text}</td>')
            out.append("</tr>")
        out.append("</table>")
        return "".join(out)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


# ------------------------------------------------------------------ sections
def config_table(config: dict | None) -> Table | None:
    if not config:
        return None
    rows = _flatten(config)
    # Two key/value pairs per row keeps a 50-field configuration on one page.
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:]
    body = []
    for i in range(half):
        k1, v1 = left[i]
        cells = [k1, fmt_value(v1)]
        cells += [right[i][0], fmt_value(right[i][1])] if i < len(right) else ["", ""]
        body.append(cells)
    return Table(["Field", "Value", "Field", "Value"], body, css="config")


def flops_figures(model) -> dict[str, float | None]:
    """Cumulative training FLOPs of the run: spent, dense equivalent and saved per source."""
    s = model.summary()
    out = {"spent": s.get("flops_spent"), "dense": s.get("flops_dense")}
    out.update((k, (s.get("flops_saved") or {}).get(k)) for k, _ in FLOP_SOURCES)
    return out


def projected_flops(projected: dict | None) -> dict[str, float | None]:
    """The plan's projected totals in the same shape as ``flops_figures`` (empty when absent)."""
    fl = read_flops(projected.get("flops")) if isinstance(projected, dict) else None
    if fl is None:
        return {}
    out: dict[str, float | None] = {"spent": fl["spent"], "dense": fl["dense"], **fl["saved"]}
    return {k: v for k, v in out.items() if _finite(v)}


OVERHEAD_LABELS = {"dst_dense_grad": "dense gradients (RigL)", "mask_scoring": "mask scoring (SNIP/GraSP)",
                   "analysis": "analyses (probe forwards)"}


def overhead_figures(model) -> tuple[dict[str, float], dict[str, float]]:
    """(the run's overhead FLOPs by source, the plan's), from run_finished and the projection;
    a run without run_finished gets its total as spent - (dense - saved), which the ledger
    makes exact."""
    plan = read_flops(model.projected.get("flops")) if isinstance(model.projected, dict) else None
    plan_over = {k: v for k, v in (plan or {}).get("overhead", {}).items() if _finite(v) and v > 0}
    fin = read_flops((model.finished or {}).get("flops"))
    if fin is not None:
        return {k: v for k, v in fin["overhead"].items() if _finite(v) and v > 0}, plan_over
    got = flops_figures(model)
    if not (_finite(got.get("spent")) and _finite(got.get("dense"))):
        return {}, plan_over
    rest = got["spent"] - got["dense"] + sum(got[k] for k, _ in FLOP_SOURCES if _finite(got.get(k)))
    return ({"total": rest} if rest > 1e-9 * got["dense"] else {}), plan_over


def flops_table(model) -> Table | None:
    got = flops_figures(model)
    if not _finite(got.get("spent")) and not _finite(got.get("dense")):
        return None
    plan = projected_flops(model.projected)
    dense = got.get("dense")
    plan_dense = plan.get("dense")

    def pct(v, d):
        return fmt_pct(100.0 * v / d) if _finite(v) and _finite(d) and d > 0 else "–"

    header = ["Source", "Training FLOPs", "% of dense"]
    if plan:
        header += ["Projected", "% of dense"]
    saved_total = sum(got[k] for k, _ in FLOP_SOURCES if _finite(got.get(k)))
    plan_saved = sum(plan[k] for k, _ in FLOP_SOURCES if _finite(plan.get(k)))
    lines = [("Spent", "spent")] + [(label, k) for k, label in FLOP_SOURCES]
    rows = []
    for label, key in lines:
        row = [label, fmt_flops(got.get(key)), pct(got.get(key), dense)]
        if plan:
            row += [fmt_flops(plan.get(key)), pct(plan.get(key), plan_dense)]
        rows.append(row)
    row = ["Saved in total", fmt_flops(saved_total), pct(saved_total, dense)]
    if plan:
        row += [fmt_flops(plan_saved) if plan_saved else "–", pct(plan_saved, plan_dense)]
    rows.append(row)
    # FLOPs spent on top of the sparse training (RigL's dense gradients, SNIP/GraSP scoring,
    # the analyses' probe): part of Spent, so that Spent = Dense - Saved in total + these
    over, plan_over = overhead_figures(model)
    for src in [k for k in dict.fromkeys((*OVERHEAD_LABELS, *over, *plan_over)) if over.get(k) or plan_over.get(k)]:
        row = [f"Overhead: {OVERHEAD_LABELS.get(src, src)}", fmt_flops(over.get(src)), pct(over.get(src), dense)]
        if plan:
            row += [fmt_flops(plan_over.get(src)), pct(plan_over.get(src), plan_dense)]
        rows.append(row)
    row = ["Dense equivalent", fmt_flops(dense), pct(dense, dense)]
    if plan:
        row += [fmt_flops(plan_dense), pct(plan_dense, plan_dense)]
    rows.append(row)
    return Table(header, rows, numeric=[False] + [True] * (len(header) - 1), strong_rows={0, len(rows) - 1})


def memory_tables(model) -> tuple[Table | None, Table | None]:
    """(projected against measured totals, projected totals by part), either None when absent."""
    rows = []
    mem = model.projected.get("memory") if isinstance(model.projected, dict) else None
    mem = mem if isinstance(mem, dict) else {}
    setting = ", ".join(x for x in (f"{mem['bits']}-bit" if _finite(mem.get("bits")) else "",
                                     f"batch {mem['batch_size']}" if _finite(mem.get("batch_size")) else "") if x)
    for key, label, note in (("peak_bytes", "Projected peak", "epoch {peak_epoch}"),
                             ("average_bytes", "Projected average", "mean over epochs"),
                             ("min_bytes", "Projected minimum", "epoch {min_epoch}"),
                             ("dense_bytes", "Dense training", "same model, no sparsity or freezing")):
        if _finite(mem.get(key)):
            text = note.format(peak_epoch=_ep(mem.get("peak_epoch")), min_epoch=_ep(mem.get("min_epoch")))
            rows.append([label, fmt_bytes(mem[key]), f"cost model{f' ({setting})' if setting else ''}: {text}"])
    peak = model.column("memory_peak")
    rss = model.column("memory_rss")
    if np.isfinite(peak).any():
        i = int(np.nanargmax(peak))
        dev = str((model.run_started or {}).get("device") or "")
        at = f"epoch {_ep(_int_or(model.column('epoch')[i]))}"
        note = (f"CUDA allocator peak, {at}" if dev.startswith("cuda") else
                f"engine process peak RSS, {at} (a CPU run: includes the Python and torch runtime, "
                "so it is not comparable with the cost model)")
        rows.append(["Measured peak", fmt_bytes(float(peak[i])), note])
    if np.isfinite(rss).any():
        rows.append(["Measured resident set", fmt_bytes(float(np.nanmax(rss))), "engine process RSS, maximum"])
    totals = Table(["Quantity", "Memory", "Source"], rows, numeric=[False, True, False]) if rows else None

    parts = mem.get("by_part") if isinstance(mem.get("by_part"), dict) else {}
    cols = [(k, label) for k, label in (("peak", "At projected peak"), ("min", "At projected minimum"),
                                        ("dense", "Dense training")) if isinstance(parts.get(k), dict)]
    by_part = None
    if cols:
        names = list(dict.fromkeys(n for k, _ in cols for n in parts[k]))
        body = [[n.replace("_", " ").capitalize()] + [fmt_bytes(parts[k].get(n)) for k, _ in cols] for n in names]
        body.append(["Total"] + [fmt_bytes(sum(v for v in parts[k].values() if _finite(v))) for k, _ in cols])
        by_part = Table(["Part"] + [label for _, label in cols], body, numeric=[False] + [True] * len(cols),
                        strong_rows={len(body) - 1})
    return totals, by_part


def _int_or(x: float):
    return int(x) if _finite(x) and float(x).is_integer() else x


def timing_rows(model) -> list[list[str]]:
    """First start, each resume and the training time of all sessions together (the report
    header used to give the latest session's start as the run's)."""
    t = model.timing()
    rows = [["First started", _fmt_time(t["first_start"], seconds=True)]]
    for i, r in enumerate(t["resumes"], start=1):
        rows.append([f"Resumed ({i})" if len(t["resumes"]) > 1 else "Resumed", _fmt_time(r, seconds=True)])
    rows.append(["Training time, all sessions", fmt_seconds(t["training_time"])])
    return rows


def _resumes_text(model) -> str:
    n = len(model.timing()["resumes"]) if hasattr(model, "timing") else 0
    return f"resumed {n}×" if n else ""


def final_metrics_table(model) -> Table:
    s = model.summary()
    n = model.n_epochs
    rows = [
        ["Status", s.get("status") or "–"],
        ["Epochs completed", f"{s.get('epochs_done') or n} of {s.get('epochs_planned') or '?'}"],
        ["Final test accuracy", fmt_acc(s.get("final_test_acc"))],
        ["Best test accuracy", fmt_acc(s.get("best_test_acc"))],
        ["Final train accuracy", fmt_acc(model.last("train_acc"))],
        ["Final train loss", fmt_num(model.last("train_loss"))],
        ["Final test loss", fmt_num(model.last("test_loss"))],
        ["Final weight density", fmt_pct(100 * model.last("density")) if _finite(model.last("density")) else "–"],
        ["Training samples, last epoch", fmt_num(model.last("samples"))],
        *timing_rows(model),
        ["Device", str(s.get("device") or "–")],
        *([["CPU threads", model.threads_text()]] if model.threads_text() else []),
    ]
    return Table(["Metric", "Value"], rows, numeric=[False, True], css="kv")


def planned_freeze_epochs(model) -> dict[str, int]:
    """Block name -> planned freeze epoch, from the plan's per-block list or its frozen prefix."""
    plan = model.freeze_plan if isinstance(model.freeze_plan, dict) else {}
    names = list(model.block_names)
    per_block = plan.get("block_epochs", plan.get("freeze_epochs"))
    out: dict[str, int] = {}
    if isinstance(per_block, dict):
        out = {str(k): int(v) for k, v in per_block.items() if _finite(v)}
    elif isinstance(per_block, list):
        for i, v in enumerate(per_block):
            if isinstance(v, dict):
                name, ep = v.get("block", v.get("name")), v.get("epoch")
            else:
                name, ep = (names[i] if i < len(names) else str(i)), v
            if name is not None and _finite(ep):
                out[str(name)] = int(ep)
    if not out:
        try:
            pm = np.asarray(model.planned_frozen_matrix())
        except Exception:
            pm = np.zeros((0, 0))
        for b in range(min(pm.shape[0], len(names))):
            hit = np.flatnonzero(pm[b])
            if hit.size:
                out[names[b]] = int(hit[0])
    return out


def freeze_section(model) -> tuple[str, Table | None]:
    """A sentence and a per-block table (planned against actual freeze epochs)."""
    plan = model.freeze_plan if isinstance(model.freeze_plan, dict) else None
    cfg_freeze = (model.config or {}).get("freeze") or {}
    planned = planned_freeze_epochs(model)
    actual: dict[str, dict] = {}
    for ev in model.freeze_events:
        actual.setdefault(str(ev.get("block")), ev)
    unfrozen = {str(ev.get("block")): ev.get("epoch") for ev in model.unfreeze_events}
    if not plan and not actual:
        target = cfg_freeze.get("target")
        why = "freeze.target is 0" if not target else "the run recorded no freeze plan and no freeze events"
        return f"No layer freezing in this run ({why}).", None
    start = None
    if plan:
        start = plan.get("start_epoch", plan.get("t_frz"))
    if start is None and planned:
        start = min(planned.values())
    first = min((ev.get("epoch") for ev in actual.values() if _finite(ev.get("epoch"))), default=None)
    bits = [f"Scheme <b>{html.escape(str(cfg_freeze.get('scheme', plan.get('scheme') if plan else '–')))}</b>"]
    if _finite(cfg_freeze.get("target")):
        bits.append(f"target {fmt_pct(100 * cfg_freeze['target'])} of training FLOPs")
    if plan and saving_text(plan):
        bits.append(f"plan: {saving_text(plan)}")
    bits.append(f"planned start epoch <b>{_ep(start)}</b>")
    bits.append(f"first actual freeze at epoch <b>{_ep(first)}</b>")
    bits.append(f"{len(actual)} of {len(model.block_names) or '?'} blocks frozen by the end")
    names = list(model.block_names) or sorted(set(planned) | set(actual))
    rows = []
    for name in names:
        if name not in planned and name not in actual:
            continue
        ev = actual.get(name)
        rows.append([name, _ep(planned.get(name)) if name in planned else "–",
                     _ep(ev.get("epoch")) if ev else "not frozen",
                     fmt_flops(ev.get("flops_saved")) if ev else "–",
                     _ep(unfrozen[name]) if name in unfrozen else "–"])
    # A freeze event's flops_saved is what freezing had saved (by plan) before that epoch.
    table = Table(["Block", "Planned freeze epoch", "Actual freeze epoch", "Saved by freezing before", "Unfrozen at"],
                  rows, numeric=[False, True, True, True, True]) if rows else None
    return "; ".join(bits) + ".", table


def analysis_section(model, fig: Callable[[str, str], str], figures: dict) -> str:
    """The Section 3 analyses: what was measured, the adaptive-freezing line, the figures."""
    an = (model.config or {}).get("analysis") or {}
    if not AD.has_analysis(model):
        why = "analysis.enabled is false" if not an.get("enabled") else "no analysis was recorded"
        return _section("Analyses", f'<p class="empty">No Section 3 analyses for this run ({why}).</p>', "analysis")
    meas = AD.measured(model)
    text = (f"{len(meas)} measurement(s) of the fixed probe set "
            f"({html.escape(str(meas[0].get('probe_size', '?')) if meas else '?')} training samples), "
            f"every {html.escape(str(an.get('every') or (model.config or {}).get('interval', '?')))} epoch(s) and at "
            f"the end; analysis cost {fmt_flops(sum(float(e.get('flops') or 0) for e in meas))} FLOPs.")
    line = AD.adaptive_summary(model)
    if line:
        text += " " + html.escape(line[0].upper() + line[1:]) + "."
    body = f"<p>{text}</p>" + "".join(fig(k, "") for k in ("analysis_cka", "analysis_similarity", "analysis_grad")
                                      if k in figures)
    return _section("Analyses", body, "analysis")


def sieve_section(model) -> tuple[str, Table | None]:
    ups = list(model.sieve_updates)
    cfg_sieve = (model.config or {}).get("sieve") or {}
    if not ups:
        if not cfg_sieve.get("ratio"):
            return "No data sieving in this run (sieve.ratio is 0).", None
        # a short run can sieve without ever updating: the first removed set stays out throughout
        ratio = fmt_pct(100 * cfg_sieve["ratio"]) if _finite(cfg_sieve.get("ratio")) else "?"
        return (f"Mode <b>{html.escape(str(cfg_sieve.get('mode', '–')))}</b>, ratio {ratio} removed; "
                "no sieve update was recorded, so the initially removed samples stayed out "
                "for the whole run."), None
    last = ups[-1]
    bits = [f"Mode <b>{html.escape(str(cfg_sieve.get('mode', '–')))}</b>"]
    if _finite(cfg_sieve.get("ratio")):
        bits.append(f"ratio {fmt_pct(100 * cfg_sieve['ratio'])} removed")
    bits.append(f"{len(ups)} update{'s' if len(ups) != 1 else ''}")
    bits.append(f"final active set <b>{fmt_num(last.get('active_size'))}</b>, "
                f"removed set <b>{fmt_num(last.get('removed_size'))}</b>")
    if _finite(last.get("initial_waiting")):
        bits.append(f"{fmt_num(last['initial_waiting'])} initially removed samples still waiting")
    rows = [[_ep(u.get("epoch")), fmt_num(u.get("active_size")), fmt_num(u.get("removed_size")),
             fmt_num(u.get("k")), fmt_num(len(u.get("swapped_in") or [])), fmt_num(len(u.get("swapped_out") or [])),
             fmt_num(u.get("initial_waiting"))] for u in ups]
    table = Table(["Epoch", "Active", "Removed", "k", "Swapped in", "Swapped out", "Initial still waiting"],
                  rows, numeric=[True] * 7)
    return "; ".join(bits) + ".", table


def dst_table(model) -> Table | None:
    ups = list(model.mask_updates)
    if not ups:
        return None
    # step-based methods (RigL) update many times an epoch: one row per epoch, its updates counted
    by_epoch: dict = {}
    for u in ups:
        by_epoch.setdefault(u.get("epoch"), []).append(u)
    rows = []
    for epoch, group in by_epoch.items():
        last = group[-1]
        layers = [x for u in group for x in (u.get("layers") or []) if isinstance(x, dict)]
        changed = [x.get("changed") for x in layers if _finite(x.get("changed"))]
        n_layers = len([x for x in (last.get("layers") or []) if isinstance(x, dict)])
        rows.append([_ep(epoch), fmt_num(len(group)),
                     fmt_pct(100 * last["density"], 2) if _finite(last.get("density")) else "–",
                     fmt_num(n_layers), fmt_pct(100 * float(np.mean(changed)), 2) if changed else "–"])
    return Table(["Epoch", "Updates", "Density", "Layers", "Mean positions changed"], rows, numeric=[True] * 5)


def checkpoints_table(model) -> Table | None:
    if not model.checkpoints:
        return None
    rows = [[_checkpoint_position(c), str(c.get("reason", "–")),
             fmt_bytes(c.get("bytes")), Path(str(c.get("path", ""))).name] for c in model.checkpoints]
    return Table(["Taken", "Reason", "Size", "File"], rows, numeric=[False, False, True, False])


def _checkpoint_position(c: dict) -> str:
    # the event's epoch is where training continues from (0-based): after that many epochs,
    # or inside the next one when batch > 0
    e, b = c.get("epoch"), c.get("batch")
    if not isinstance(e, int):
        return "–"
    if isinstance(b, int) and b > 0:
        return f"epoch {e + 1}, batch {b}"
    return f"after epoch {e}" if e > 0 else "before epoch 1"


# ------------------------------------------------------------------ rendering
@dataclass
class Figure:
    key: str
    title: str
    svg: bytes
    name: str = ""          # its files in figures/ (what it shows); the key when empty

    @property
    def file_name(self) -> str:
        return self.name or self.key


def _figure_html(fig: Figure, src: Callable[[Figure], str], width: int | None) -> str:
    w = f' width="{width}"' if width else ""
    # No caption: each figure carries its own title, and a caption could be paged apart from it.
    return f'<div class="figure"><img src="{src(fig)}"{w} alt="{html.escape(fig.title)}" /></div>'


def data_uri(fig: Figure) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(fig.svg).decode("ascii")


def _section(title: str, body: str, anchor: str) -> str:
    return f'<h2 id="{anchor}" class="{anchor}"><a name="{anchor}"></a>{html.escape(title)}</h2>\n{body}\n'


def render_html(model, figures: dict[str, Figure], *, image_src: Callable[[Figure], str] = data_uri,
                image_width: int | None = None, extra_css: str = "", generated: _dt.datetime | None = None,
                template: Path = TEMPLATE) -> str:
    """The whole report as one HTML document."""
    s = model.summary()
    generated = generated or _dt.datetime.now(_dt.timezone.utc)
    started = model.timing()["first_start"] if hasattr(model, "timing") else (model.run_started or {}).get("time")

    def fig(key: str, missing: str) -> str:
        return _figure_html(figures[key], image_src, image_width) if key in figures else f'<p class="empty">{missing}</p>'

    parts = []
    if getattr(model, "skipped_text", ""):
        parts.append('<table class="info" width="100%" cellpadding="8"><tr><td>'
                     f'{html.escape(model.skipped_text)}</td></tr></table>')
    if model.error:
        tb = str(model.error.get("traceback") or "").strip().splitlines()[-12:]
        parts.append('<table class="alert" width="100%" cellpadding="8"><tr><td>'
                     f'<b>The run crashed:</b> {html.escape(str(model.error.get("message", "")))}'
                     + (f'<pre>{html.escape(chr(10).join(tb))}</pre>' if tb else "") + "</td></tr></table>")
    elif s.get("status") == "running":
        parts.append('<table class="info" width="100%" cellpadding="8"><tr><td><b>The run is still going</b>: '
                     'this report covers the epochs recorded so far.</td></tr></table>')
    elif s.get("status") == "crashed":
        parts.append('<table class="alert" width="100%" cellpadding="8"><tr><td><b>The event stream ends without '
                     'run_finished</b>: the engine was killed or is still running. Figures cover the epochs recorded.'
                     '</td></tr></table>')

    parts.append(_section("Summary", _summary_cards(model) + final_metrics_table(model).html(), "summary"))
    ft = flops_table(model)
    parts.append(_section("Training FLOPs by source",
                          (ft.html() + '<p class="note">Cumulative over the epochs run; % of the dense-equivalent '
                           'cost of the same epochs (every layer dense, no block frozen, the full training set). '
                           'Projected: the plan for the whole configured run.</p>')
                          if ft else '<p class="empty">No FLOPs were recorded (no epoch finished).</p>', "flops"))
    totals, by_part = memory_tables(model)
    body = totals.html() if totals else '<p class="empty">No memory figures were recorded.</p>'
    if by_part:
        body += '<p class="note">Projected training memory by part (cost model):</p>' + by_part.html()
    parts.append(_section("Memory", body, "memory"))
    curves = ("accuracy_loss", "accuracy_flops", "flops_sources")
    parts.append(_section("Training curves",
                          fig("accuracy_loss", "No accuracy or loss was recorded.")
                          + fig("accuracy_flops", "No FLOPs were recorded.")
                          + fig("flops_sources", "No FLOPs were recorded.")
                          if any(k in figures for k in curves) or model.n_epochs
                          else '<p class="empty">No epoch finished: no curves to show.</p>', "curves"))
    text, table = freeze_section(model)
    body = f"<p>{text}</p>" + (table.html() if table else "")
    if "freeze_timeline" in figures:
        body += fig("freeze_timeline", "")
    parts.append(_section("Layer freezing", body, "freeze"))
    parts.append(analysis_section(model, fig, figures))
    text, table = sieve_section(model)
    body = f"<p>{text}</p>" + (fig("sieve", "") if "sieve" in figures else "") + (table.html() if table else "")
    parts.append(_section("Data sieving", body, "sieve"))
    dt = dst_table(model)
    sp = (model.config or {}).get("sparsity") or {}
    dst_intro = (f"<p>Algorithm <b>{html.escape(str(sp.get('algorithm', '–')))}</b>, target sparsity "
                 f"{fmt_pct(100 * sp['target']) if _finite(sp.get('target')) else '–'}, distribution "
                 f"{html.escape(str(sp.get('distribution', '–')))}.</p>")
    parts.append(_section("Sparse training (DST mask updates)",
                          dst_intro + (dt.html() if dt else '<p class="empty">No mask update was recorded.</p>'), "dst"))
    ct = checkpoints_table(model)
    parts.append(_section("Checkpoints", ct.html() if ct else '<p class="empty">No checkpoint was written.</p>',
                          "checkpoints"))
    cfg = config_table(model.config)
    parts.append(_section("Configuration", cfg.html() if cfg else '<p class="empty">No configuration recorded.</p>',
                          "config"))

    subtitle = " · ".join(x for x in (
        f"{s.get('model') or '?'} on {s.get('dataset') or '?'}",
        f"device {s.get('device')}" if s.get("device") else "",
        f"started {_fmt_time(started)}" if _finite(started) else "",
        _resumes_text(model),
    ) if x)
    values = {
        "title": html.escape(f"SpFDE report · {model.name}"),
        "run_name": html.escape(model.name),
        "status": html.escape(s.get("status") or "unknown"),
        "status_class": html.escape(s.get("status") or "unknown"),
        "subtitle": html.escape(subtitle),
        "run_dir": html.escape(str(model.run_dir) if model.run_dir is not None else ""),
        "run_id": html.escape(str((model.run_started or {}).get("run_id") or "")),
        "generated": generated.strftime("%Y-%m-%d %H:%M UTC"),
        "body": "\n".join(parts),
        "extra_css": extra_css,
    }
    return Template(template.read_text(encoding="utf-8")).safe_substitute(values)


def _summary_cards(model) -> str:
    """Headline numbers in one row (a table, so QTextDocument lays it out too)."""
    s = model.summary()
    got = flops_figures(model)
    dense = got.get("dense")
    saved = sum(got[k] for k, _ in FLOP_SOURCES if _finite(got.get(k)))
    cards = [
        ("Final test accuracy", fmt_acc(s.get("final_test_acc"))),
        ("Best test accuracy", fmt_acc(s.get("best_test_acc"))),
        ("Training FLOPs", fmt_flops(got.get("spent"))),
        ("Saved vs dense", fmt_pct(100 * saved / dense) if _finite(dense) and dense > 0 else "–"),
        ("Epochs", f"{s.get('epochs_done') or model.n_epochs} / {s.get('epochs_planned') or '?'}"),
    ]
    cells = "".join(f'<td class="card" width="20%" align="center"><span class="card-value">{html.escape(v)}</span>'
                    f'<br/><span class="card-label">{html.escape(k)}</span></td>' for k, v in cards)
    return f'<table class="cards" width="100%" cellspacing="6" cellpadding="10"><tr>{cells}</tr></table>'
