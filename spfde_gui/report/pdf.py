"""report.pdf: the report's HTML laid out by QTextDocument and painted page by page.

Figures stay vectors: QTextDocument knows only raster images, so after the HTML is laid
out each ``<img>`` naming an SVG figure is replaced by an object character that a handler
(``_SvgFigures``) draws with QSvgRenderer straight onto the PDF painter: paths and text in
the PDF, no embedded image.

QTextDocument needs a QGuiApplication (fonts); ``plots.ensure_app`` makes one when the
caller has none, with the offscreen platform working as well as a display. Pages are
painted by hand rather than with ``QTextDocument.print_`` so each gets a running footer
(run name, page n of N) and the layout uses 96-dpi CSS pixels whatever the PDF resolution.
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
