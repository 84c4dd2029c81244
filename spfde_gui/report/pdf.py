"""report.pdf: the report's HTML laid out by QTextDocument and painted page by page.

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
    """Lay out ``html_text`` (images referenced by the keys of ``images``) into ``path``."""
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
    for name, png in images.items():
        img = QImage.fromData(png, "PNG")
        if img.isNull():
            raise ValueError(f"figure {name!r} is not a decodable PNG")
        doc.addResource(QTextDocument.ImageResource, QUrl(name), img)
    doc.setHtml(html_text)
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
