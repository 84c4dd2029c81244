"""Report figures, raster against vector, side by side in one process: the time to draw the
figures, to write the HTML and the PDF report, and the sizes of what is written.

* raster: the report before issue 22, pyqtgraph's ImageExporter drawing each figure as a
  PNG 1800 px wide (the old 900 px scene at 2x), embedded in the HTML and in the PDF;
* vector: SVG from Qt's SVG generator (spfde_gui/report/export_figure.py), embedded in the
  HTML, drawn as vectors into the PDF, and written to figures/ as SVG, PDF and PNG (300 dpi).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_report_figures.py [--epochs 12 200] [--repeat 3]

The run is the tests' recorded run (tests/test_report.py: the real planner's freeze plan and
FLOPs ledger) at each --epochs, plus the analyses' run for the heat maps. Prints the median
of --repeat builds per step, the ratios vector/raster, and the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]      # the tests' recorded runs

RASTER_WIDTH = 1800


def raster_export(win, title: str = "") -> bytes:
    """The pre-issue-22 figure: ImageExporter to PNG bytes."""
    from pyqtgraph.exporters import ImageExporter
    from PySide6.QtCore import QBuffer, QIODevice, QRectF
    size = win.size()
    win.ci.setGeometry(QRectF(0, 0, size.width(), size.height()))
    win.ci.layout.activate()
    exporter = ImageExporter(win.ci)
    exporter.parameters()["width"] = RASTER_WIDTH
    exporter.parameters()["antialias"] = True
    image = exporter.export(toBytes=True)
    buf = QBuffer()
    buf.open(QIODevice.WriteOnly)
    image.save(buf, "PNG")
    buf.close()
    win.close()
    win.deleteLater()
    return bytes(buf.data().data())


def build(run_dir: Path, out: Path, mode: str) -> dict[str, float]:
    """One report build; seconds per step and bytes written."""
    import base64

    from spfde_gui.report import _figures, builder, load_run, plots
    from spfde_gui.report.pdf import write_pdf
    model = load_run(run_dir)
    saved = plots._export
    if mode == "raster":
        plots._export = raster_export
    try:
        t0 = time.perf_counter()
        figures = _figures(model)
        t1 = time.perf_counter()
    finally:
        plots._export = saved
    if mode == "raster":
        src = lambda f: "data:image/png;base64," + base64.b64encode(f.svg).decode("ascii")  # noqa: E731
        ext = "png"
    else:
        src, ext = builder.data_uri, "svg"
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    html.write_text(builder.render_html(model, figures, image_src=src), encoding="utf-8")
    t2 = time.perf_counter()
    from spfde_gui.report import PDF_CSS, PDF_IMAGE_WIDTH
    text = builder.render_html(model, figures, image_src=lambda f: f"figure/{f.key}.{ext}",
                               image_width=PDF_IMAGE_WIDTH, extra_css=PDF_CSS)
    pdf = write_pdf(text, {f"figure/{f.key}.{ext}": f.svg for f in figures.values()}, out / "report.pdf", "bench")
    t3 = time.perf_counter()
    res = {"figures": len(figures), "draw_s": t1 - t0, "html_s": t2 - t1, "pdf_s": t3 - t2,
           "html_bytes": html.stat().st_size, "pdf_bytes": pdf.stat().st_size,
           "figure_bytes": sum(len(f.svg) for f in figures.values())}
    if mode == "vector":
        from spfde_gui.report.export_figure import write_figures
        t4 = time.perf_counter()
        files = write_figures({f.file_name: f.svg for f in figures.values()}, out / "figures")
        res["files_s"] = time.perf_counter() - t4
        res["files_bytes"] = sum(p.stat().st_size for p in files)
        for fmt in ("pdf", "png"):
            res[f"{fmt}_file_bytes"] = sum(p.stat().st_size for p in files if p.suffix == f".{fmt}")
    return res


def load() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, nargs="+", default=[12, 200])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    from engine.run.events import dumps
    from spfde_gui.report.plots import ensure_app
    ensure_app()
    import test_report
    from test_analysis_views import _events
    print(f"bench_report_figures: {os.cpu_count()} cores; at start {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for n in a.epochs:
            test_report.CFG = dict(test_report.CFG, epochs=n)
            run = Path(tmp) / f"run{n}"
            test_report.recorded_run(run)
            runs.append((f"recorded run, {n} epochs", run))
        an = Path(tmp) / "analyses"
        an.mkdir()
        (an / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in _events()), encoding="utf-8")
        runs.append(("analyses run (heat maps)", an))
        build(runs[0][1], Path(tmp) / "warm", "vector")         # first-use imports out of the timing
        build(runs[0][1], Path(tmp) / "warm", "raster")
        for label, run in runs:
            got: dict[str, list[dict]] = {"raster": [], "vector": []}
            for i in range(a.repeat):
                for mode in ("raster", "vector") if i % 2 == 0 else ("vector", "raster"):   # alternate the order
                    got[mode].append(build(run, Path(tmp) / f"{mode}{i}", mode))
            med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in got.items()}
            r, v = med["raster"], med["vector"]
            print(f"\n{label}: {int(v['figures'])} figures, median of {a.repeat}")
            print(f"  {'step':28s} {'raster':>12s} {'vector':>12s} {'vector/raster':>14s}")
            for key, what, unit in (("draw_s", "draw the figures", "s"), ("html_s", "write report.html", "s"),
                                    ("pdf_s", "write report.pdf", "s"), ("figure_bytes", "figures (PNG vs SVG)", "KiB"),
                                    ("html_bytes", "report.html", "KiB"), ("pdf_bytes", "report.pdf", "KiB")):
                scale = 1024 if unit == "KiB" else 1
                fmt = "{:10.1f} KiB" if unit == "KiB" else "{:10.3f} s  "
                print(f"  {what:28s} {fmt.format(r[key] / scale)} {fmt.format(v[key] / scale)} {v[key] / r[key]:13.2f}x")
            total_r = r["draw_s"] + r["html_s"] + r["pdf_s"]
            total_v = v["draw_s"] + v["html_s"] + v["pdf_s"]
            print(f"  {'html + pdf in all':28s} {total_r:10.3f} s   {total_v:10.3f} s   {total_v / total_r:13.2f}x")
            print(f"  vector only: figures/ (SVG+PDF+PNG) {v['files_s']:.3f} s, {v['files_bytes'] / 1024:.1f} KiB "
                  f"(PDF {v['pdf_file_bytes'] / 1024:.1f} KiB, PNG 300 dpi {v['png_file_bytes'] / 1024:.1f} KiB)")
    print(f"\nat end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
