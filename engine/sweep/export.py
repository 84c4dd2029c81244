"""The results table as CSV, Markdown and LaTeX (pure Python; the CLI, the studio and the
report write the same tables). Accuracies in percent, FLOPs in scientific notation, memory
in MiB; every row carries the count of seeds that finished, so gaps stay visible."""
from __future__ import annotations

import csv
import io

from engine.sweep.results import Row

CSV_STATS = ("flops_spent", "final_test_acc", "best_test_acc", "peak_memory_bytes", "wall_time")


def _v(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "" if v is None else str(v)


def to_csv(rows: list[Row], varied: list[str]) -> str:
    """One line per setting: the varied fields, seed counts, then mean and std of each metric."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = list(varied) + ["seeds_completed", "seeds_total", "seeds_failed"]
    for k in CSV_STATS:
        head += [f"{k}_mean", f"{k}_std"]
    w.writerow(head)
    for r in rows:
        line = [_v(r.setting.get(f)) for f in varied] + [r.completed, r.seeds_total, r.failed]
        for k in CSV_STATS:
            s = r.stats.get(k)
            line += [_num(s.mean if s else None), _num(s.std if s else None)]
        w.writerow(line)
    return buf.getvalue()


def _num(x) -> str:
    return "" if x is None else repr(float(x))


def _cells(r: Row, pm: str) -> list[str]:
    st = r.stats
    fl = st["flops_spent"].mean
    mem = st["peak_memory_bytes"].mean
    wall = st["wall_time"].mean
    return [f"{fl:.3g}" if fl is not None else "-",
            st["final_test_acc"].fmt(100).replace(" ± ", pm),
            st["best_test_acc"].fmt(100).replace(" ± ", pm),
            f"{mem / 2**20:.1f}" if mem is not None else "-",
            f"{wall:.1f}" if wall is not None else "-",
            f"{r.completed}/{r.seeds_total}" + (f" ({r.failed} failed)" if r.failed else "")]


# peak memory as the engine measured it per epoch: the process's peak RSS on a CPU, PyTorch's
# peak allocation on a GPU (not the plan's projected model training memory)
HEADERS = ["training FLOPs", "final test acc (%)", "best test acc (%)", "measured peak mem (MiB)", "wall time (s)",
           "seeds"]


def to_markdown(rows: list[Row], varied: list[str]) -> str:
    head = list(varied) + HEADERS
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        vals = [_v(r.setting.get(f)) for f in varied] + _cells(r, " ± ")
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in vals) + " |")
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(rows: list[Row], varied: list[str], caption: str = "") -> str:
    """A booktabs tabular (\\usepackage{booktabs}); mean $\\pm$ std over seeds."""
    head = list(varied) + HEADERS
    out = [r"\begin{table}[t]", r"\centering"]
    if caption:
        out.append(r"\caption{" + tex_escape(caption) + "}")
    out += [r"\begin{tabular}{" + "l" * len(varied) + "r" * len(HEADERS) + "}", r"\toprule",
            " & ".join(tex_escape(h) for h in head) + r" \\", r"\midrule"]
    for r in rows:
        vals = [tex_escape(_v(r.setting.get(f))) for f in varied] + \
               [tex_escape(c).replace("\x00", r" $\pm$ ") for c in _cells(r, "\x00")]
        out.append(" & ".join(vals) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


FORMATS = {"csv": to_csv, "md": to_markdown, "markdown": to_markdown, "tex": to_latex, "latex": to_latex}
