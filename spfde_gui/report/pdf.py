"""report.pdf: the report's HTML laid out by QTextDocument and painted page by page.

Figures stay vectors: QTextDocument knows only raster images, so after the HTML is laid
out each ``<img>`` naming an SVG figure is replaced by an object character that a handler
(``_SvgFigures``) draws with QSvgRenderer straight onto the PDF painter: paths and text in
the PDF, no embedded image.

QTextDocument needs a QGuiApplication (fonts); ``plots.ensure_app`` makes one when the
caller has none, with the offscreen platform working as well as a display. Pages are
painted by hand rather than with ``QTextDocument.print_`` so each gets a running footer
(run name, page n of N) and the layout uses 96-dpi CSS pixels whatever the PDF resolution.

QTextDocument paginates without "keep with next": a section heading can end a page with its
body on the next, and a short table can leave one row alone over the break. ``keep_together``
adds the page breaks a typesetter would (see its docstring) before painting.
"""
from __future__ import annotations

from pathlib import Path

# Layout width of the page body in CSS pixels (A4 less 15 mm margins at 96 dpi).
PDF_RESOLUTION = 300
MARGIN_MM = 15.0
FOOTER_PX = 22
LOGICAL_DPI = 96.0


def write_pdf(html_text: str, images: dict[str, bytes], path: Path, footer_left: str) -> Path:
    """Lay out ``html_text`` into ``path``; ``images``: the SVG figures (or PNG images)
    its ``<img src>`` names, by name."""
    from PySide6.QtCore import QMarginsF, QRectF, QSizeF, Qt, QUrl
    from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter, QTextDocument

    writer = QPdfWriter(str(path))
    writer.setResolution(PDF_RESOLUTION)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.A4), QPageLayout.Portrait,
                                     QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM), QPageLayout.Millimeter))
    writer.setTitle(footer_left)
    writer.setCreator("SpFDE Studio")

    scale = PDF_RESOLUTION / LOGICAL_DPI
    paint = writer.pageLayout().paintRectPixels(PDF_RESOLUTION)
    page_w = paint.width() / scale
    page_h = paint.height() / scale - FOOTER_PX

    doc = QTextDocument()
    font = QFont("DejaVu Sans")
    font.setPointSizeF(9.5)
    doc.setDefaultFont(font)
    doc.setDocumentMargin(0)
    svgs = {name: data for name, data in images.items() if _is_svg(data)}
    for name, data in images.items():
        if name in svgs:
            continue
        img = QImage.fromData(data)
        if img.isNull():
            raise ValueError(f"figure {name!r} is neither SVG nor a decodable image")
        doc.addResource(QTextDocument.ImageResource, QUrl(name), img)
    handler = _SvgFigures(svgs)       # kept alive until the pages are painted
    doc.documentLayout().registerHandler(SVG_OBJECT, handler)
    doc.setHtml(html_text)
    handler.replace_images(doc)
    doc.setPageSize(QSizeF(page_w, page_h))
    keep_together(doc, page_h)
    pages = doc.pageCount()

    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write PDF to {path}")
    try:
        foot_font = QFont("DejaVu Sans")
        foot_font.setPixelSize(10)   # logical pixels: the painter is scaled to 96 dpi
        for i in range(pages):
            if i:
                writer.newPage()
            painter.save()
            painter.scale(scale, scale)
            painter.translate(0, -i * page_h)
            doc.drawContents(painter, QRectF(0, i * page_h, page_w, page_h))
            painter.restore()
            painter.save()
            painter.scale(scale, scale)
            painter.setFont(foot_font)
            painter.setPen(QColor("#8a949e"))
            y = page_h + 6
            painter.drawLine(0, int(y), int(page_w), int(y))
            box = QRectF(0, y + 3, page_w, FOOTER_PX - 6)
            painter.drawText(box, Qt.AlignLeft | Qt.AlignVCenter, footer_left)
            painter.drawText(box, Qt.AlignRight | Qt.AlignVCenter, f"page {i + 1} of {pages}")
            painter.restore()
    finally:
        painter.end()
    return path


# A heading keeps at least this much of what follows it on its page (CSS px: about three lines
# of text, or the top of a figure); a table shorter than this share of a page is never split.
KEEP_WITH_HEADING_PX = 60.0
UNSPLIT_TABLE_SHARE = 0.5
# A paragraph this short (about three lines) after a heading is only a lead-in.
SHORT_TEXT_PX = 50.0
# A table split over a page break keeps at least this much on each side (two rows or so).
MIN_SPLIT_PX = 44.0


def keep_together(doc, page_h: float, max_passes: int = 60) -> int:
    """Page breaks that keep a heading with what follows it, a short table whole, and a long
    one from leaving a row or two alone over the break: one break at a time from the top (each
    moves everything after it), until none is needed. Returns the breaks added."""
    from PySide6.QtGui import QTextCursor, QTextFormat

    layout = doc.documentLayout()
    added = 0
    done: set[int] = set()          # each object is broken before at most once (no loop)
    for _ in range(max_passes):
        doc.pageCount()                               # lays the document out
        items = _top_level(doc, layout)
        fix = _first_bad_break(items, page_h, done)
        if fix is None:
            break
        kind, obj = fix
        done.add(_key(kind, obj))
        if kind == "block":
            fmt = obj.blockFormat()
            fmt.setPageBreakPolicy(fmt.pageBreakPolicy() | QTextFormat.PageBreak_AlwaysBefore)
            QTextCursor(obj).setBlockFormat(fmt)
        else:
            fmt = obj.frameFormat()
            fmt.setPageBreakPolicy(fmt.pageBreakPolicy() | QTextFormat.PageBreak_AlwaysBefore)
            obj.setFrameFormat(fmt)
        added += 1
    return added


def _top_level(doc, layout) -> list[tuple[str, object, float, float, bool]]:
    """(kind, block or table, top, bottom, is a heading) of the root frame's children in order,
    empty blocks left out (they take no room worth keeping)."""
    items: list[tuple[str, object, float, float, bool]] = []
    it = doc.rootFrame().begin()
    while not it.atEnd():
        frame = it.currentFrame()
        if frame is not None:
            r = layout.frameBoundingRect(frame)
            items.append(("table", frame, r.top(), r.bottom(), False))
        else:
            block = it.currentBlock()
            r = layout.blockBoundingRect(block)
            if block.isValid() and block.length() > 1 and r.height() > 0:
                items.append(("block", block, r.top(), r.bottom(), block.blockFormat().headingLevel() > 0))
        it += 1
    return items


def _group_start(items, i: int) -> tuple[str, object]:
    """What moves with item ``i`` to a new page: its heading, over a short lead-in or two."""
    j = i
    while j > 0 and i - j < 3 and not items[j][4]:
        prev = items[j - 1]
        if prev[4]:
            return prev[0], prev[1]
        if prev[0] != "block" or prev[3] - prev[2] >= SHORT_TEXT_PX:
            break
        j -= 1
    return items[i][0], items[i][1]


def _key(kind: str, obj) -> int:
    return obj.position() if kind == "block" else obj.firstPosition()


def _first_bad_break(items, page_h: float, done: set[int] | frozenset[int] = frozenset()):
    """The (kind, object) to start a new page with, for the first bad break from the top
    (none of ``done``, the objects that already start a page)."""
    for i in range(len(items)):
        fix = _bad_break_at(items, i, page_h)
        if fix is not None and _key(*fix) not in done:
            return fix
    return None


def _bad_break_at(items, i: int, page_h: float):
    """What to move to a new page because of item ``i`` (None: nothing)."""
    kind, obj, top, bottom, heading = items[i]
    page = lambda y: int(y // page_h)         # noqa: E731 - the page a y coordinate lies on
    if (top % page_h) <= 1:
        return None                           # starts a page already
    if heading and i + 1 < len(items):
        # with a short lead-in paragraph or two, the heading keeps the figure or table after it too
        j = i + 1
        while j + 1 < len(items) and j - i <= 2 and items[j][0] == "block" and not items[j + 1][4] \
                and items[j][3] - items[j][2] < SHORT_TEXT_PX:
            j += 1
        need = min(items[j][3], items[j][2] + KEEP_WITH_HEADING_PX)
        return (kind, obj) if page(need - 1) != page(top) else None
    if page(bottom - 1) == page(top):
        return None                           # on one page
    if bottom - top <= UNSPLIT_TABLE_SHARE * page_h:
        return _group_start(items, i)         # short (a table, a figure, a paragraph): whole, with its heading
    if kind == "table" and (page(top) + 1) * page_h - top < MIN_SPLIT_PX:
        return _group_start(items, i)         # long, with only a row or two before the break
    return None


SVG_OBJECT = 0x1000 + 22          # QTextFormat.UserObject + n: our object type
_NAME, _WIDTH = 1, 2               # its properties (QTextFormat.UserProperty + n)


def _is_svg(data: bytes) -> bool:
    head = data[:512].lstrip()
    return head.startswith(b"<?xml") or head.startswith(b"<svg")


def _SvgFigures(svgs: dict[str, bytes]):
    """A QTextObjectInterface drawing the named SVG figures as vectors."""
    from PySide6.QtCore import QByteArray, QSizeF
    from PySide6.QtGui import QPyTextObject, QTextCharFormat, QTextCursor, QTextFormat
    from PySide6.QtSvg import QSvgRenderer

    class SvgFigures(QPyTextObject):
        def __init__(self):
            super().__init__()
            self.renderers = {}
            for name, data in svgs.items():
                r = QSvgRenderer(QByteArray(data))
                if not r.isValid():
                    raise ValueError(f"figure {name!r} is not a valid SVG")
                self.renderers[name] = r

        def _size(self, fmt) -> QSizeF:
            box = self.renderers[fmt.property(QTextFormat.UserProperty + _NAME)].viewBoxF()
            width = float(fmt.property(QTextFormat.UserProperty + _WIDTH) or 0) or box.width()
            return QSizeF(width, width * box.height() / max(box.width(), 1e-9))

        def intrinsicSize(self, doc, pos, fmt):
            return self._size(fmt)

        def drawObject(self, painter, rect, doc, pos, fmt):
            self.renderers[fmt.property(QTextFormat.UserProperty + _NAME)].render(painter, rect)

        def replace_images(self, doc) -> int:
            """Each <img> naming one of the SVG figures becomes our object (same width)."""
            found = []
            block = doc.begin()
            while block.isValid():
                it = block.begin()
                while not it.atEnd():
                    frag = it.fragment()
                    fmt = frag.charFormat()
                    if fmt.isImageFormat() and fmt.toImageFormat().name() in self.renderers:
                        img = fmt.toImageFormat()
                        found.append((frag.position(), img.name(), img.width()))
                    it += 1
                block = block.next()
            cursor = QTextCursor(doc)
            for pos, name, width in reversed(found):    # from the end: positions stay valid
                obj = QTextCharFormat()
                obj.setObjectType(SVG_OBJECT)
                obj.setProperty(QTextFormat.UserProperty + _NAME, name)
                obj.setProperty(QTextFormat.UserProperty + _WIDTH, float(width))
                cursor.setPosition(pos)
                cursor.setPosition(pos + 1, QTextCursor.KeepAnchor)
                cursor.insertText("\ufffc", obj)
            return len(found)

    return SvgFigures()
