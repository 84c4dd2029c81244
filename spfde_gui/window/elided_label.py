"""A one-line label that never widens the window: too long a text is elided at the end (or
in the middle, for paths) and the full text is in its tooltip.

A plain QLabel's minimum width is its text's width, so a long run path or status line in
the header set the window's minimum width (1440 -> 1766 px during a sweep: plots and
buttons off a 1600-px screen). This label asks for a few characters at least and shows
what fits.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

MIN_CHARS = 8   # the least the label asks for: a word and the ellipsis


class ElidedLabel(QLabel):
    """Plain text on one line; elided where it does not fit, the full text as the tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.ElideRight):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setTextFormat(Qt.PlainText)
        # Preferred: the whole text while there is room, down to minimumSizeHint when not
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text or ""
        super().setText(self._full)
        self.setToolTip(self._full)
        self.update()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        fm = self.fontMetrics()
        return QSize(fm.averageCharWidth() * MIN_CHARS, fm.height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        fm = self.fontMetrics()
        return QSize(min(fm.horizontalAdvance(self._full), 600) + 4, fm.height())

    def elided(self) -> str:
        """The text as drawn at the label's current width."""
        r = self.contentsRect()
        return self.fontMetrics().elidedText(self._full, self._mode, r.width())

    def paintEvent(self, _ev) -> None:  # noqa: N802 - Qt's name
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.setFont(self.font())
        r = self.contentsRect()
        p.drawText(r, int(self.alignment()) | Qt.TextSingleLine, self.elided())
        p.end()
