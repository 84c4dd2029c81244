"""The Help menu: the guides in docs/ (opened in the desktop's viewer) and About.

The guides are the checkout's Markdown files; an installed wheel does not carry them, and
the menu then says where to read them instead of offering dead entries.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import QMainWindow, QMessageBox

import spfde_gui

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
# (menu text, file): the guides a new user reaches for first, in that order
GUIDES = (
    ("Using the studio", "gui.md"),
    ("Sparse training methods", "sparse-training.md"),
    ("Layer freezing", "layer-freezing.md"),
    ("Data sieving", "data-sieving.md"),
    ("FLOPs and memory model", "cost-model.md"),
    ("Sweeps", "sweeps.md"),
    ("Budget search", "search.md"),
    ("Reports", "reports.md"),
    ("Fidelity to the papers", "fidelity.md"),
    ("Shared folders and trust", "trust.md"),
    ("Events (JSON Lines)", "events.md"),
)

ABOUT = """<h3>SpFDE Studio {version}</h3>
<p>Sparse training with progressive layer freezing and circular data sieving, after
<i>Layer Freezing &amp; Data Sieving: Missing Pieces of a Generic Framework for Sparse
Training</i> (Yin et al., NeurIPS 2022).</p>
<p>The studio configures, launches and watches the training engine, which runs as its own
process (<code>spfde-train</code>); every figure shown is read from the run's
<code>events.jsonl</code>.</p>
<p>Guides: {docs}</p>"""


def guide_url(name: str, docs: Path = DOCS_DIR) -> QUrl | None:
    p = docs / name
    return QUrl.fromLocalFile(str(p)) if p.is_file() else None


def install(window: QMainWindow, docs: Path = DOCS_DIR) -> None:
    """Add the Help menu to ``window``'s menu bar."""
    menu = window.menuBar().addMenu("&Help")
    found = False
    for text, name in GUIDES:
        url = guide_url(name, docs)
        if url is None:
            continue
        found = True
        act = QAction(text, window)
        act.setStatusTip(str(docs / name))
        act.triggered.connect(lambda _c=False, url=url: QDesktopServices.openUrl(url))
        menu.addAction(act)
    if not found:
        none = menu.addAction("Guides: in the docs/ folder of the source repository")
        none.setEnabled(False)
    menu.addSeparator()
    about = QAction("About SpFDE Studio", window)
    where = str(docs) if found else "the docs/ folder of the source repository"
    about.triggered.connect(lambda: QMessageBox.about(
        window, "About SpFDE Studio", ABOUT.format(version=spfde_gui.__version__, docs=where)))
    menu.addAction(about)
