"""Figures as vectors: a pyqtgraph layout drawn into SVG, and that SVG turned into PDF
(still vectors) or PNG. One place for the report's figures and every view's "Save figure".

* SVG comes from Qt's own QSvgGenerator painting the scene, with pyqtgraph's export mode on
  (scatter symbols drawn as paths, not from its pixmap atlas). pyqtgraph's SVGExporter is
  not used: with Qt 6.11 it fails on the path data Qt now writes (docs/figures.md).
* An ImageItem (the analyses' heat maps) would go into the SVG as an embedded PNG: while the
  figure is drawn it is hidden and its cells are painted as rectangles instead.
* A figure is laid out at its printed size, ``DPI`` scene pixels per inch, with fonts given
  in pixels from points: a 8 pt label is 8 pt on paper whatever the screen's DPI. The SVG's
  width and height are that size (in mm); its viewBox is in scene pixels.
* pyqtgraph's pens are cosmetic (a width in device pixels), which Qt writes as
  ``vector-effect="non-scaling-stroke"`` inside a group carrying the data-to-scene
  transform: a PDF or a 300-dpi PNG would draw such lines a device pixel wide (hairlines).
  ``bake_strokes`` applies those groups' transforms to the coordinates instead, so every
  line is as wide on paper as on screen, in any viewer.
* PDF and PNG are drawn from the SVG by QSvgRenderer (QtSvg and QtGui only, no pyqtgraph,
  so the report's background task can write them).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DPI = 96.0                       # scene pixels per inch (Qt's logical DPI, also the SVG's)
PNG_DPI = 300                    # what a journal asks of a raster figure
FORMATS = ("svg", "pdf", "png")


@dataclass(frozen=True)
class Column:
    """A LaTeX column: the figure's printed size and its font sizes (points)."""
    name: str
    width_in: float
    height_in: float
    title_pt: float
    label_pt: float
    tick_pt: float
    legend_pt: float


# IEEE/ACM two-column pages: a column is 3.5 in (8.9 cm), the full text width 7.1 in (18 cm).
# Fonts: 7-9 pt, the size of a caption next to them.
SINGLE = Column("single", 3.5, 2.6, title_pt=8.0, label_pt=7.5, tick_pt=7.0, legend_pt=7.0)
DOUBLE = Column("double", 7.1, 2.9, title_pt=9.0, label_pt=8.5, tick_pt=8.0, legend_pt=8.0)
COLUMNS = {c.name: c for c in (SINGLE, DOUBLE)}


def px(points: float) -> float:
    """Points as scene pixels (the figure is laid out at ``DPI``)."""
    return points * DPI / 72.0


def column(name: str) -> Column:
    try:
        return COLUMNS[name]
    except KeyError:
        raise ValueError(f"unknown figure size {name!r}; expected one of {', '.join(COLUMNS)}") from None


# ------------------------------------------------------------------ drawing (pyqtgraph)
def render_svg(layout_item, width_px: float, height_px: float, title: str = "") -> bytes:
    """The pyqtgraph layout item (a GraphicsLayout) laid out at width x height scene pixels
    and drawn as SVG. The GUI thread only (it paints the scene)."""
    from pyqtgraph.exporters import Exporter
    from PySide6.QtCore import QBuffer, QIODevice, QRectF, QSize
    from PySide6.QtGui import QColor, QPainter
    from PySide6.QtSvg import QSvgGenerator

    w, h = int(round(width_px)), int(round(height_px))
    target = QRectF(0, 0, w, h)
    layout_item.setGeometry(target)
    layout_item.layout.activate()
    buf = QBuffer()
    buf.open(QIODevice.WriteOnly)
    gen = QSvgGenerator()
    gen.setOutputDevice(buf)
    gen.setSize(QSize(w, h))
    gen.setViewBox(target)
    gen.setResolution(int(DPI))
    gen.setTitle(title or "SpFDE Studio figure")
    gen.setDescription("SpFDE Studio")
    exporter = Exporter(layout_item)
    painter = QPainter(gen)
    with _vector_images(layout_item):
        try:
            painter.setRenderHint(QPainter.Antialiasing)
            painter.fillRect(target, QColor("white"))
            exporter.setExportMode(True, {"antialias": True, "background": QColor("white"),
                                          "painter": painter, "resolutionScale": 1.0})
            layout_item.scene().render(painter, target, _drawn_rect(layout_item))
        finally:
            painter.end()
            exporter.setExportMode(False)
    buf.close()
    return bake_strokes(bytes(buf.data().data()))


def _drawn_rect(layout_item):
    """The layout's rectangle in the scene, grown to hold any cell wider than it (a long
    title sets a plot's minimum width): that figure is scaled down, never clipped."""
    import pyqtgraph as pg
    rect = layout_item.sceneBoundingRect()
    if isinstance(layout_item, pg.GraphicsLayout):     # (a PlotItem's .items are its curves)
        for child in layout_item.items:
            rect = rect.united(child.sceneBoundingRect())
    return rect


@contextmanager
def _vector_images(layout_item):
    """Every visible ImageItem under ``layout_item`` replaced by rectangles while drawing."""
    import pyqtgraph as pg
    swaps = []
    for item in _descendants(layout_item):
        if isinstance(item, pg.ImageItem) and item.isVisible() and item.image is not None:
            cells = _cells_class().from_image(item)
            if cells is None:
                continue
            cells.setParentItem(item.parentItem())
            cells.stackBefore(item)          # the image's place: under the marks drawn on it
            item.setVisible(False)
            swaps.append((item, cells))
    try:
        yield
    finally:
        for item, cells in swaps:
            scene = cells.scene()
            if scene is not None:
                scene.removeItem(cells)
            item.setVisible(True)


def _descendants(item):
    for child in item.childItems():
        yield child
        yield from _descendants(child)


@cache
def _cells_class():
    import numpy as np
    import pyqtgraph as pg
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QPainter

    class _Cells(pg.GraphicsObject):
        """An image drawn as one filled rectangle per run of equal cells in a row."""

        def __init__(self, rgba: np.ndarray):
            super().__init__()
            self.rgba = rgba                       # rows x cols x 4, uint8

        @classmethod
        def from_image(cls, img):
            rgba = _image_rgba(img)
            if rgba is None:
                return None
            cells = cls(rgba)
            cells.setTransform(img.transform())
            cells.setPos(img.pos())
            cells.setZValue(img.zValue())
            return cells

        def boundingRect(self):
            return QRectF(0, 0, self.rgba.shape[1], self.rgba.shape[0])

        def paint(self, p, *_args):
            p.setRenderHint(QPainter.Antialiasing, False)
            p.setPen(pg.mkPen(None))
            rows, cols = self.rgba.shape[:2]
            for r in range(rows):
                row = self.rgba[r]
                c = 0
                while c < cols:
                    e = c + 1
                    while e < cols and (row[e] == row[c]).all():
                        e += 1
                    # a hair wider than the cells: no seams between neighbours in a PDF viewer
                    p.fillRect(QRectF(c, r, e - c + 0.02, 1.02), QColor(*(int(v) for v in row[c])))
                    c = e

    return _Cells


def _image_rgba(img):
    """An ImageItem's pixels as rows x cols x RGBA (row-major as drawn), or None."""
    import numpy as np
    import pyqtgraph as pg
    data = np.asarray(img.image)
    if data.ndim < 2 or 0 in data.shape[:2]:
        return None
    if pg.getConfigOption("imageAxisOrder") == "col-major":
        data = data.swapaxes(0, 1)
    lut = img.lut if not callable(img.lut) else img.lut(data)
    levels = img.levels if img.levels is not None else [float(np.nanmin(data)), float(np.nanmax(data))]
    argb, _alpha = pg.functions.makeARGB(data, lut=lut, levels=levels)    # BGRA byte order
    return argb[..., [2, 1, 0, 3]]


# ------------------------------------------------------------------ a live view's figure
HOVER = "hover_overlay"          # attribute marking a view's mouse read-out: never saved
ROW_HEIGHT_IN = {"single": 2.0, "double": 2.4}   # per row of plots in the view


def _root(glw):
    """The item to draw: a GraphicsLayoutWidget's layout, or a PlotWidget's one plot."""
    return glw.ci if hasattr(glw, "ci") else glw.getPlotItem()


def _grid(item) -> tuple[int, int]:
    """(rows, columns) of plots: a GraphicsLayout's grid, or 1 x 1 for a lone PlotItem."""
    import pyqtgraph as pg
    if isinstance(item, pg.GraphicsLayout):
        return max(1, item.layout.rowCount()), max(1, item.layout.columnCount())
    return 1, 1


def view_figure_svg(glw, size: str = "single", title: str = "") -> bytes:
    """A view's plots (a GraphicsLayoutWidget, or a PlotWidget) as SVG, laid out at a LaTeX
    column's width with paper fonts; the view looks as before afterwards."""
    col = column(size)
    layout = _root(glw)
    rows, cols = _grid(layout)
    height_in = max(col.height_in, ROW_HEIGHT_IN[col.name] * rows)
    old_rect = layout.geometry()
    old_margins = layout.layout.getContentsMargins()
    old_spacing = (layout.layout.horizontalSpacing(), layout.layout.verticalSpacing())
    try:
        layout.layout.setContentsMargins(2, 2, 6, 2)
        if cols * rows > 1:
            layout.layout.setSpacing(4)
        cell_px = col.width_in * DPI / cols
        with _paper_fonts(layout, col, cell_px), _hidden_overlays(layout):
            return render_svg(layout, col.width_in * DPI, height_in * DPI, title)
    finally:
        layout.layout.setContentsMargins(*old_margins)
        layout.layout.setHorizontalSpacing(old_spacing[0])
        layout.layout.setVerticalSpacing(old_spacing[1])
        layout.setGeometry(old_rect)
        layout.layout.activate()


def save_view_figure(glw, path, size: str = "single", title: str = "") -> Path:
    """Write a view's plots to ``path`` (.svg, .pdf or .png) at a single or double column."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot save a figure as {path.name!r}: the name must end in .svg, .pdf or .png")
    path.write_bytes(figure_bytes(view_figure_svg(glw, size, title), fmt))
    return path


@contextmanager
def _hidden_overlays(layout):
    shown = [it for it in _descendants(layout) if getattr(it, HOVER, False) and it.isVisible()]
    for it in shown:
        it.setVisible(False)
    try:
        yield
    finally:
        for it in shown:
            it.setVisible(True)


@contextmanager
def _paper_fonts(layout, col: Column, cell_px: float):
    """Titles, axis labels, ticks and legends of every plot at the column's point sizes; a
    title wider than its plot's cell (``cell_px`` less the axis) breaks onto two lines."""
    import pyqtgraph as pg
    from PySide6.QtGui import QFont
    tick = QFont()
    tick.setPixelSize(round(px(col.tick_pt)))
    undo = []
    plots = [layout] if isinstance(layout, pg.PlotItem) else []
    for plot in plots + [it for it in _descendants(layout) if isinstance(it, pg.PlotItem)]:
        for name in ("left", "bottom", "right", "top"):
            ax = plot.getAxis(name)
            if not ax.isVisible():
                continue
            undo.append((ax, ax.style.get("tickFont"), dict(ax.labelStyle), ax._tickSpacing))
            ax.setTickFont(tick)
            if name == "bottom" and ax._tickSpacing and ax.linkedView() is not None:
                _fit_fixed_ticks(ax, cell_px - 48)
            ax.labelStyle = {**ax.labelStyle, "font-size": f"{px(col.label_pt):.1f}px"}
            ax._updateLabel()
        labels = [plot.titleLabel] if plot.titleLabel.text else []
        if plot.legend is not None:
            labels += [label for _sample, label in plot.legend.items]
        for label in labels:
            size = col.title_pt if label is plot.titleLabel else col.legend_pt
            undo.append((label, label.text, dict(label.opts)))
            label.setText(label.text, **{**label.opts, "size": f"{px(size):.1f}px"})
            if label is plot.titleLabel and label.minimumWidth() > cell_px - 48:
                label.setText(_two_lines(label.text))
    try:
        yield
    finally:
        for item, *old in reversed(undo):
            if isinstance(item, pg.AxisItem):
                item.setTickFont(old[0])
                item.labelStyle = old[1]
                item._tickSpacing = old[2]
                item._updateLabel()
            else:
                item.opts = old[1]         # the old options as they were (setText only adds)
                item.setText(old[0])


def _fit_fixed_ticks(ax, width_px: float) -> None:
    """A view's fixed tick spacing (every epoch) widened to 2, 5, 10... times itself until
    the labels have room (about 30 px each) at the figure's width."""
    (major, _off), *_rest = ax._tickSpacing
    lo, hi = ax.linkedView().viewRange()[0]
    room = max(width_px, 1.0) / 30.0              # labels that fit side by side
    step = major
    for factor in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000):
        step = major * factor
        if (hi - lo) / step <= room:
            break
    if step != major:
        ax.setTickSpacing(step, step)


def _two_lines(text: str) -> str:
    """``text`` broken at the space nearest its middle (HTML, as pyqtgraph labels take)."""
    spaces = [i for i, ch in enumerate(text) if ch == " "]
    if not spaces or "<br" in text:
        return text
    i = min(spaces, key=lambda k: abs(k - len(text) / 2))
    return text[:i] + "<br>" + text[i + 1:]


def install_save_actions(view, glw) -> list:
    """"Save figure (single column)…" and "(double column)…" in the right-click menu of every
    plot of ``glw``; the save dialog offers SVG, PDF and PNG. Returns the actions."""
    from PySide6.QtGui import QAction
    actions = []
    for col in (SINGLE, DOUBLE):
        act = QAction(f"Save figure ({col.name} column, {col.width_in:g} in)…", glw)
        act.setObjectName(f"save-figure:{col.name}")
        act.triggered.connect(lambda _checked=False, c=col.name: ask_and_save(view, glw, c))
        glw.scene().contextMenu.append(act)
        actions.append(act)
    return actions


FILTERS = {"svg": "SVG vector figure (*.svg)", "pdf": "PDF vector figure (*.pdf)", "png": "PNG image, 300 dpi (*.png)"}


def default_name(view, size: str) -> str:
    title = re.sub(r"[^a-z0-9]+", "_", str(getattr(view, "title", "figure")).lower()).strip("_") or "figure"
    return f"{title}_{size}.svg"


def ask_and_save(view, glw, size: str) -> Path | None:
    """The save dialog, then the file; a failure is shown, not raised (a menu action)."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox
    model, sweep = getattr(view, "model", None), getattr(view, "manifest", None)
    folder = (Path(model.run_dir) if model is not None and getattr(model, "run_dir", None) else
              Path(sweep.dir) if sweep is not None else Path.cwd())
    name, chosen = QFileDialog.getSaveFileName(view, f"Save figure ({size} column)",
                                               str(folder / default_name(view, size)), ";;".join(FILTERS.values()))
    if not name:
        return None
    path = Path(name)
    if path.suffix.lower().lstrip(".") not in FORMATS:
        fmt = next((k for k, v in FILTERS.items() if v == chosen), "svg")
        path = path.with_name(path.name + "." + fmt)
    try:
        return save_view_figure(glw, path, size, str(getattr(view, "title", "")).replace("&&", "&"))
    except (OSError, ValueError) as exc:
        QMessageBox.warning(view, "Save figure", f"Could not save {path}: {exc}")
        return None


# ------------------------------------------------------------------ cosmetic strokes
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"({_NUM}),({_NUM})")
_GROUP = re.compile(r'(<g\b[^>]*?\btransform=")matrix\(([^)]*)\)("[^>]*>)(.*?)(</g>)', re.S)
_BAKEABLE = {"path", "polyline", "polygon", "rect"}
_RECT = re.compile(rf'<rect\b([^>]*?)x="({_NUM})" y="({_NUM})" width="({_NUM})" height="({_NUM})"')


def _fmt(v: float) -> str:
    return format(v, ".6g")


def bake_strokes(svg: bytes) -> bytes:
    """Groups whose lines are cosmetic (non-scaling strokes) get their transform applied
    to the coordinates: the lines then have their width in the figure's own units. Groups
    that draw nothing (no fill, no stroke: pyqtgraph's clip shapes) are dropped: QSvgRenderer
    6.11 strokes their paths with the outer group's black pen in a PDF."""
    text = _INVISIBLE.sub(_drop_invisible, svg.decode("utf-8"))
    return _GROUP.sub(_bake_group, text).encode("utf-8")


_INVISIBLE = re.compile(r'\n<g fill="none" stroke="none"[^>]*>((?:(?!<g\b).)*?)</g>\n', re.S)


def _drop_invisible(m: re.Match) -> str:
    return m.group(0) if re.search(r'\s(?:fill|stroke)="', m.group(1)) else "\n"


def _bake_group(m: re.Match) -> str:
    head, matrix, tail, body, end = m.groups()
    if "non-scaling-stroke" not in body or not set(re.findall(r"<(\w+)", body)) <= _BAKEABLE:
        return m.group(0)
    if re.search(r'\bd="[^"]*[HVSQTAhvsqta]', body):
        return m.group(0)                 # only M/L/C (what Qt writes) are mapped pointwise
    try:
        a, b, c, d, e, f = (float(v) for v in matrix.split(","))
    except ValueError:
        return m.group(0)

    def pair(p: re.Match) -> str:
        x, y = float(p.group(1)), float(p.group(2))
        return f"{_fmt(a * x + c * y + e)},{_fmt(b * x + d * y + f)}"

    def rect(r: re.Match) -> str:
        x, y, w, h = (float(v) for v in r.groups()[1:])
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        pts = [(a * px_ + c * py + e, b * px_ + d * py + f) for px_, py in corners]
        if b == 0 and c == 0:             # still axis-aligned: a rect
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            return (f'<rect{r.group(1)}x="{_fmt(min(xs))}" y="{_fmt(min(ys))}" '
                    f'width="{_fmt(max(xs) - min(xs))}" height="{_fmt(max(ys) - min(ys))}"')
        return f'<path{r.group(1)}d="M{" L".join(f"{_fmt(px_)},{_fmt(py)}" for px_, py in pts)} Z"'

    body = _RECT.sub(rect, body)
    body = re.sub(r'(\b(?:d|points)=")([^"]*)(")', lambda q: q.group(1) + _PAIR.sub(pair, q.group(2)) + q.group(3),
                  body)
    body = body.replace(' vector-effect="non-scaling-stroke"', "")
    return f"{head}matrix(1,0,0,1,0,0){tail}{body}{end}"


# ------------------------------------------------------------------ conversions (QtSvg)
def _renderer(svg: bytes):
    from PySide6.QtCore import QByteArray
    from PySide6.QtSvg import QSvgRenderer
    r = QSvgRenderer(QByteArray(svg))
    if not r.isValid():
        raise ValueError("not a valid SVG figure")
    return r


def svg_size_in(svg: bytes) -> tuple[float, float]:
    """The figure's printed size in inches (its viewBox at ``DPI``)."""
    box = _renderer(svg).viewBoxF()
    return box.width() / DPI, box.height() / DPI


def svg_to_pdf(svg: bytes) -> bytes:
    """A one-page PDF the size of the figure, drawn as vectors (text stays text)."""
    from PySide6.QtCore import QBuffer, QIODevice, QMarginsF, QRectF, QSizeF
    from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter
    r = _renderer(svg)
    w_in, h_in = svg_size_in(svg)
    buf = QBuffer()
    buf.open(QIODevice.WriteOnly)
    writer = QPdfWriter(buf)
    writer.setResolution(1200)
    writer.setCreator("SpFDE Studio")
    writer.setPageLayout(QPageLayout(QPageSize(QSizeF(w_in, h_in), QPageSize.Inch, "figure"),
                                     QPageLayout.Portrait, QMarginsF(0, 0, 0, 0)))
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError("cannot draw the figure into a PDF")
    try:
        page = writer.pageLayout().fullRectPixels(writer.resolution())
        r.render(painter, QRectF(0, 0, page.width(), page.height()))
    finally:
        painter.end()
    buf.close()
    return bytes(buf.data().data())


def svg_to_png(svg: bytes, dpi: int = PNG_DPI) -> bytes:
    """The figure as a PNG at ``dpi`` (white background)."""
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtGui import QColor, QImage, QPainter
    r = _renderer(svg)
    w_in, h_in = svg_size_in(svg)
    img = QImage(max(1, round(w_in * dpi)), max(1, round(h_in * dpi)), QImage.Format_ARGB32)
    img.fill(QColor("white"))
    img.setDotsPerMeterX(round(dpi / 0.0254))
    img.setDotsPerMeterY(round(dpi / 0.0254))
    painter = QPainter(img)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    r.render(painter)
    painter.end()
    buf = QBuffer()
    buf.open(QIODevice.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(buf.data().data())


def figure_bytes(svg: bytes, fmt: str) -> bytes:
    if fmt == "svg":
        return svg
    if fmt == "pdf":
        return svg_to_pdf(svg)
    if fmt == "png":
        return svg_to_png(svg)
    raise ValueError(f"unknown figure format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_figure(svg: bytes, path: Path) -> Path:
    """``svg`` written to ``path`` in the format its suffix names (.svg, .pdf, .png)."""
    fmt = Path(path).suffix.lower().lstrip(".")
    Path(path).write_bytes(figure_bytes(svg, fmt))
    return Path(path)


def write_figures(svgs: dict[str, bytes], folder: Path, formats: Iterable[str] = FORMATS) -> list[Path]:
    """One file per figure and format: ``folder/NAME.svg`` (and .pdf, .png)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_figure(svg, folder / f"{name}.{fmt}") for name, svg in svgs.items() for fmt in formats]
