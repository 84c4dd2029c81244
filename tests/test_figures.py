"""Vector figures (issue 22): every report figure is valid SVG, the PDF report draws its
figures as vectors (no raster image, checked with pypdf), figures/ holds one file per figure
and format named for what it shows, and each studio view's "Save figure" writes SVG, PDF and
PNG at a LaTeX column's size. Qt tests: one xdist group (the ``gui`` mark, tests/suite_time.py).
"""
from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.run.events import dumps  # noqa: E402

pytestmark = pytest.mark.gui

SVG_NS = "{http://www.w3.org/2000/svg}"
RUN_FIGURES = ("accuracy_loss", "accuracy_vs_flops", "flops_by_technique", "freeze_timeline", "sieve_sizes")
ANALYSIS_FIGURES = ("cka_heatmap", "mask_similarity_heatmap", "gradient_norms")


def _length_in(value: str) -> float:
    """An SVG length (Qt writes mm) in inches."""
    m = re.fullmatch(r"([0-9.]+)(mm|in|pt|px)?", value.strip())
    assert m, f"unexpected SVG length {value!r}"
    number, unit = float(m.group(1)), m.group(2) or "px"
    return number / {"mm": 25.4, "in": 1.0, "pt": 72.0, "px": 96.0}[unit]


def check_vector_svg(data: bytes, what: str) -> tuple[float, float]:
    """``data`` parses as SVG with a size and a viewBox, draws paths and text, and embeds no
    raster image; returns its printed size in inches."""
    root = ET.fromstring(data)
    assert root.tag == SVG_NS + "svg", f"{what}: root is {root.tag}, not <svg>"
    for attr in ("width", "height", "viewBox"):
        assert root.get(attr), f"{what}: <svg> has no {attr}"
    box = [float(v) for v in root.get("viewBox").split()]
    assert len(box) == 4 and box[2] > 0 and box[3] > 0, f"{what}: bad viewBox {root.get('viewBox')}"
    tags = [el.tag.removeprefix(SVG_NS) for el in root.iter()]
    drawn = sum(tags.count(t) for t in ("path", "polyline", "polygon", "rect", "line"))
    assert drawn >= 10, f"{what}: only {drawn} drawn shapes"
    texts = [el for el in root.iter(SVG_NS + "text") if "".join(el.itertext()).strip()]
    assert len(texts) >= 3, f"{what}: {len(texts)} text elements (title, ticks, labels expected)"
    assert "image" not in tags, f"{what}: embeds a raster <image>"
    # pyqtgraph's cosmetic pens are baked into real widths (no hairlines in a PDF)
    assert b"non-scaling-stroke" not in data, f"{what}: keeps non-scaling strokes"
    return _length_in(root.get("width")), _length_in(root.get("height"))


def _analysis_run(folder: Path) -> Path:
    from test_analysis_views import _events  # the analyses' hand-written run
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in _events()), encoding="utf-8")
    return folder


def _images_on_pages(pdf: Path) -> list[int]:
    from pypdf import PdfReader
    return [len(page.images) for page in PdfReader(str(pdf)).pages]


def _pdf_text(pdf: Path) -> str:
    from pypdf import PdfReader
    text = " ".join(page.extract_text() for page in PdfReader(str(pdf)).pages)
    return re.sub(r"\s+", " ", text.replace("\ufb01", "fi"))


def test_report_figures_are_vector_svg_pdf_and_files(tmp_path, qapp):
    from test_report import recorded_run

    from spfde_gui.report import export_report
    run = tmp_path / "run"
    recorded_run(run)
    written = export_report(run, tmp_path / "out")
    figures = written["figures"]
    # one file per figure and format, named for what the figure shows
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{n}.{ext}" for n in RUN_FIGURES for ext in ("svg", "pdf", "png"))
    for name in RUN_FIGURES:
        w, h = check_vector_svg((figures / f"{name}.svg").read_bytes(), name)
        assert w == pytest.approx(7.1, abs=0.02) and 2.5 < h < 9, f"{name}: {w:.2f} x {h:.2f} in"
        pdf = figures / f"{name}.pdf"
        assert _images_on_pages(pdf) == [0], f"{name}.pdf holds a raster image"
        from pypdf import PdfReader
        box = PdfReader(str(pdf)).pages[0].mediabox
        assert float(box.width) / 72 == pytest.approx(w, abs=0.02) and float(box.height) / 72 == pytest.approx(h, abs=0.02)
        png = (figures / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        from PySide6.QtGui import QImage
        img = QImage.fromData(png)
        assert img.width() == round(w * 300) and img.height() == round(h * 300)     # 300 dpi
    # the HTML embeds the same SVGs; the PDF report draws them, as vectors, on its pages
    html_text = written["html"].read_text(encoding="utf-8")
    assert html_text.count("data:image/svg+xml;base64,") == len(RUN_FIGURES)
    assert "data:image/png" not in html_text
    pages = _images_on_pages(written["pdf"])
    assert len(pages) >= 3 and sum(pages) == 0, f"raster images per page: {pages}"
    text = _pdf_text(written["pdf"])
    # figure text is real text in the PDF: titles and axis labels can be searched
    for words in ("Freeze timeline", "Training FLOPs per epoch by source", "cross-entropy", "forgetting count"):
        assert words in text, words


def test_analysis_heat_maps_are_vectors_too(tmp_path, qapp):
    from spfde_gui.report import export_report
    written = export_report(_analysis_run(tmp_path / "run"), tmp_path / "out", formats="pdf,figures")
    names = {p.stem for p in written["figures"].iterdir()}
    assert set(ANALYSIS_FIGURES) <= names
    for name in ANALYSIS_FIGURES:
        svg = (written["figures"] / f"{name}.svg").read_bytes()
        check_vector_svg(svg, name)
        assert _images_on_pages(written["figures"] / f"{name}.pdf") == [0]
    # the heat maps' cells are filled rectangles in the viridis colours, not a picture
    cka = ET.fromstring((written["figures"] / "cka_heatmap.svg").read_bytes())
    fills = {g.get("fill") for g in cka.iter(SVG_NS + "g") if list(g) and g.get("fill") not in (None, "none")}
    assert len(fills) >= 4, fills
    assert sum(_images_on_pages(written["pdf"])) == 0


def test_bake_strokes_maps_cosmetic_lines_into_the_figure_units():
    from spfde_gui.report.export_figure import bake_strokes
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="10mm" viewBox="0 0 100 100">\n'
           b'<g fill="none" stroke="#000" stroke-width="1.5" transform="matrix(2,0,0,-3,10,90)"\n>\n'
           b'<polyline fill="none" vector-effect="non-scaling-stroke" points="0,0 5,10 " />\n'
           b'<path vector-effect="non-scaling-stroke" fill-rule="evenodd" d="M1,1 L2,2 C3,3 4,4 5,5 Z "/>\n'
           b'<rect vector-effect="non-scaling-stroke" x="1" y="2" width="3" height="4"/>\n</g>\n'
           b'<g fill="none" stroke="none"\n>\n<path fill-rule="evenodd" d="M0,0 L1,1 Z "/>\n</g>\n'
           b'<g fill="#fff" stroke="none" transform="matrix(2,0,0,2,0,0)"\n>\n<text x="1" y="1">kept</text>\n</g>\n'
           b'</svg>')
    out = bake_strokes(svg).decode()
    assert "non-scaling-stroke" not in out
    assert 'points="10,90 20,60 "' in out                       # (0,0), (5,10) through the matrix
    assert 'd="M12,87 L14,84 C16,81 18,78 20,75 Z "' in out
    assert '<rect x="12" y="72" width="6" height="12"' in out   # y flipped: its top is 90 - 3 * 6
    assert 'd="M0,0 L1,1 Z "' not in out                         # a group that draws nothing is dropped
    assert 'transform="matrix(2,0,0,2,0,0)"' in out and "kept" in out    # text keeps its transform
    ET.fromstring(out.encode())


VIEWS = ("training", "flops", "freeze", "sieve", "hardware", "analysis")


def _view(name: str, qtbot, run_dir: Path):
    import importlib

    from spfde_gui.report import load_run
    cls = {"training": "TrainingView", "flops": "FlopsView", "freeze": "FreezeView", "sieve": "SieveView",
           "hardware": "HardwareView", "analysis": "AnalysisView"}[name]
    view = getattr(importlib.import_module(f"spfde_gui.views.{name}"), cls)()
    qtbot.addWidget(view)
    view.resize(1100, 700)
    view.show()
    view.set_model(load_run(run_dir))
    return view


@pytest.mark.parametrize("name", VIEWS)
def test_save_figure_writes_svg_pdf_png_at_column_sizes(name, qtbot, tmp_path):
    from PySide6.QtGui import QImage
    from test_report import recorded_run

    from spfde_gui.report import export_figure as EF
    run = _analysis_run(tmp_path / "an") if name == "analysis" else tmp_path / "run"
    if name != "analysis":
        recorded_run(run)
    view = _view(name, qtbot, run)
    # the actions sit in the plots' right-click menu (pyqtgraph's scene menu)
    menu = view.glw.scene().contextMenu
    assert [a.objectName() for a in view.save_figure] == ["save-figure:single", "save-figure:double"]
    assert all(a in menu for a in view.save_figure)
    before = view.glw.ci.geometry()
    for size, width_in in (("single", 3.5), ("double", 7.1)):
        svg = EF.save_view_figure(view.glw, tmp_path / f"{name}_{size}.svg", size, view.title)
        w, h = check_vector_svg(svg.read_bytes(), f"{name} {size}")
        assert w == pytest.approx(width_in, abs=0.02) and h >= 2.0
        pdf = EF.save_view_figure(view.glw, tmp_path / f"{name}_{size}.pdf", size)
        assert _images_on_pages(pdf) == [0]
        from pypdf import PdfReader
        assert float(PdfReader(str(pdf)).pages[0].mediabox.width) / 72 == pytest.approx(width_in, abs=0.02)
        png = EF.save_view_figure(view.glw, tmp_path / f"{name}_{size}.png", size)
        img = QImage(str(png))
        assert abs(img.width() - width_in * 300) <= 2 and abs(img.height() - h * 300) <= 2     # 300 dpi
    # the live view is laid out as before
    assert view.glw.ci.geometry() == before
    with pytest.raises(ValueError, match=r"\.svg, \.pdf or \.png"):
        EF.save_view_figure(view.glw, tmp_path / "x.jpg")


def test_save_figure_uses_paper_fonts_and_restores_the_view(qtbot, tmp_path):
    from test_report import recorded_run

    from spfde_gui.report import export_figure as EF
    recorded_run(tmp_path / "run")
    view = _view("training", qtbot, tmp_path / "run")
    axis = view.acc_ep.getAxis("bottom")
    font_before, title_before = axis.style.get("tickFont"), view.acc_fl.titleLabel.text
    svg = EF.view_figure_svg(view.glw, "single").decode()
    # 7 pt ticks at 96 px per inch: 9 px (Qt writes the pixel size of the font)
    sizes = {float(s) for s in re.findall(r'<text[^>]*font-size="([0-9.]+)"', svg)}
    assert sizes and min(sizes) >= 9 and max(sizes) <= EF.px(EF.SINGLE.title_pt) + 1, sizes
    # a title too wide for its plot at 3.5 in breaks onto two lines; the view keeps its own
    assert svg.count(">Accuracy vs<") + svg.count(">Accuracy vs ") >= 1
    assert axis.style.get("tickFont") == font_before and view.acc_fl.titleLabel.text == title_before
    # the hover read-out is never saved
    view.hover_acc = [it for it in view.acc_ep.items if getattr(it, "hover_overlay", False)]
    assert len(view.hover_acc) == 2                     # its crosshair and its label
    for it in view.hover_acc:
        it.setVisible(True)
        if hasattr(it, "setText"):
            it.setText("HOVER-READOUT")
    assert "HOVER-READOUT" not in EF.view_figure_svg(view.glw, "double").decode()
    assert all(it.isVisible() for it in view.hover_acc)


def test_save_figure_action_asks_for_a_file_and_adds_the_chosen_type(qtbot, tmp_path, monkeypatch):
    """The menu action: the dialog's filter picks the format when the name has no suffix."""
    from PySide6.QtWidgets import QFileDialog
    from test_report import recorded_run

    from spfde_gui.report import export_figure as EF
    recorded_run(tmp_path / "run")
    view = _view("freeze", qtbot, tmp_path / "run")
    asked = []

    def fake_dialog(parent, caption, start, filters):
        asked.append((caption, start, filters))
        return str(tmp_path / "timeline"), EF.FILTERS["pdf"]
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    view.save_figure[1].trigger()                       # double column
    caption, start, filters = asked[0]
    assert "double column" in caption and start.endswith("layer_freezing_double.svg")
    assert all(f in filters for f in ("*.svg", "*.pdf", "*.png"))
    pdf = tmp_path / "timeline.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and _images_on_pages(pdf) == [0]
    from pypdf import PdfReader
    assert float(PdfReader(str(pdf)).pages[0].mediabox.width) / 72 == pytest.approx(7.1, abs=0.02)


def test_sweep_results_plot_saves_too(qtbot, tmp_path):
    """The Sweep tab's accuracy-vs-FLOPs plot (a lone PlotWidget) has the same actions."""
    from engine.sweep import cells as cells_mod
    from engine.sweep import manifest, spec
    from spfde_gui.report import export_figure as EF
    from spfde_gui.sweep.results_view import SweepResultsView
    s = spec.parse({"name": "v", "base": {"preset": "demo"},
                    "overrides": {"epochs": 2, "freeze": {"target": 0}, "sieve": {"ratio": 0}},
                    "axes": {"sparsity.target": [0.5, 0.8, 0.9]}, "seeds": 1})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    for c in m.cells:
        manifest.append_jsonl(m.dir / manifest.RESULTS, {
            "cell": c.name, "status": "completed", "run_dir": None, "final_test_acc": 0.6 + 0.05 * c.index,
            "best_test_acc": 0.7, "flops_spent": 1e6 * (3 - c.index), "peak_memory_bytes": 2**20, "wall_time": 3.0})
    v = SweepResultsView()
    qtbot.addWidget(v)
    v.resize(900, 600)
    v.show()
    v.set_sweep(m.dir)
    assert all(a in v.plot.scene().contextMenu for a in v.save_figure)
    before = v.plot.getPlotItem().geometry()
    for size, width_in in (("single", 3.5), ("double", 7.1)):
        svg = EF.save_view_figure(v.plot, tmp_path / f"sweep_{size}.svg", size)
        w, h = check_vector_svg(svg.read_bytes(), f"sweep {size}")
        assert w == pytest.approx(width_in, abs=0.02) and h >= 2.0
        assert "final test accuracy (%)" in svg.read_text()
    assert v.plot.getPlotItem().geometry() == before
