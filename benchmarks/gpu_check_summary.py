"""Write benchmarks/gpu_check.sh's Markdown summary from its part logs (pure Python, no torch).

    python3 benchmarks/gpu_check_summary.py OUT_DIR [TOTAL_SECONDS]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

GOAL = 0.95      # freezing and sieving: time saved / FLOPs saved


def tables(text: str) -> list[list[dict]]:
    """Every Markdown table of ``text`` as a list of row dicts (header -> cell)."""
    out, head, rows = [], None, []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if head is None:
                head = cells
            elif set("".join(cells)) <= set("-: "):
                continue
            else:
                rows.append(dict(zip(head, cells)))
        elif head is not None:
            out.append(rows)
            head, rows = None, []
    return out


def pct(cell: str) -> float | None:
    m = re.match(r"^\s*([-+]?\d+(?:\.\d+)?)\s*%", cell or "")
    return float(m.group(1)) / 100 if m else None


def num(cell: str) -> float | None:
    try:
        return float((cell or "").replace(",", ""))
    except ValueError:
        return None


def realisation(name: str, text: str) -> list[str]:
    """'target: realised/expected' items of a freezing or sieving log."""
    items = []
    for t in tables(text):
        for row in t:
            if name.startswith("freezing") and "realised/expected, trainer" in row:
                if pct(row.get("FLOPs target", "")) in (None, 0.0):
                    continue
                r = num(row["realised/expected, trainer"])
                s = num(row.get("realised/expected, steps", ""))
                items.append((row["FLOPs target"], r, s))
            elif name.startswith("sieving") and "wall time saved" in row and row.get("removal") != "baseline":
                w, f = pct(row["wall time saved"]), pct(row.get("FLOPs saved", ""))
                items.append((row["removal"], (w / f) if w is not None and f else None, None))
    out = []
    for target, r, s in items:
        verdict = "n/a" if r is None else ("meets" if r >= GOAL else "below")
        extra = f", steps {s:.2f}" if s is not None else ""
        out.append(f"{target}: {'?' if r is None else f'{r:.2f}'} ({verdict} the {GOAL:.0%} goal{extra})")
    return out


def _spaced(lines: list[str]) -> list[str]:
    """A blank line wherever a table starts or ends, so the Markdown renders."""
    out: list[str] = []
    for line in lines:
        if out and out[-1] and (line.startswith("|") != out[-1].startswith("|")):
            out.append("")
        out.append(line)
    return out


def main(argv: list[str]) -> int:
    out_dir = Path(argv[1] if len(argv) > 1 else "benchmarks/out")
    total = argv[2] if len(argv) > 2 else "?"
    logs = out_dir / "logs"
    parts = []
    if (logs / "parts.tsv").is_file():
        for line in (logs / "parts.tsv").read_text(encoding="utf-8", errors="replace").splitlines():
            f = line.split("\t")
            if len(f) >= 5:
                parts.append({"name": f[0], "rc": f[1], "secs": f[2], "limit": f[3], "desc": f[4]})
    env = (logs / "environment.log").read_text(errors="replace") if (logs / "environment.log").is_file() else ""

    def status(p) -> str:
        if p["rc"] == "skipped":
            return "skipped"
        if p["rc"] == "0":
            return "ok"
        if p["rc"] in ("124", "137"):
            return f"TIMEOUT ({p['limit']} s)"
        return f"FAILED (exit {p['rc']})"

    md = ["# GPU check (benchmarks/gpu_check.sh)", "", f"Total time: {total} s.", "", "```", env.strip(), "```", "",
          "| part | status | seconds | what |", "|---|---|---|---|"]
    md += [f"| {p['name']} | {status(p)} | {p['secs']} | {p['desc']} |" for p in parts]
    goal_lines = []
    for p in parts:
        log = logs / f"{p['name']}.log"
        if p["name"].startswith(("freezing", "sieving")) and log.is_file():
            items = realisation(p["name"], log.read_text(errors="replace"))
            if items:
                goal_lines.append(f"- {p['name']}: " + "; ".join(items))
    if goal_lines:
        md += ["", f"## Freezing and sieving: time saved / FLOPs saved (goal >= {GOAL:.0%})", ""] + goal_lines
    for p in parts:
        md += _part_section(p, logs / f"{p['name']}.log", status(p))
    md += ["", f"Raw logs: {logs}/"]
    (out_dir / "gpu_check.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return 0


def _part_section(p: dict, log: Path, status: str) -> list[str]:
    """One part's section of the summary: its table lines, or its log's tail when it failed."""
    if p["rc"] == "skipped" or not log.is_file():
        return []
    text = log.read_text(errors="replace")
    md = ["", f"## {p['name']}: {status}", "", p["desc"], ""]
    keep = [l for l in text.splitlines() if l.startswith(("|", "#", "Machine", "Setting", "machine", "One GPU",
                                                             "Forgetting", "Step timings", "CUDA peak",
                                                             "Benchmark wall", "(benchmark wall"))
            or re.match(r"^\d+ (passed|failed|skipped)|^=+ .*(passed|failed|skipped)", l)]
    if p["name"] in ("nvml",) or p["name"].endswith("tests"):
        md += ["```", *text.strip().splitlines()[-25:], "```"]
    elif keep and p["rc"] == "0":
        md += _spaced(keep)
    else:
        md += [*_spaced(keep), "", "Last lines of the log:", "", "```", *text.strip().splitlines()[-30:], "```"]
    return md


if __name__ == "__main__":
    sys.exit(main(sys.argv))
