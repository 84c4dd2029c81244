"""The report PDF breaks its pages as a typesetter would (spfde_gui.report.pdf.keep_together):
a heading never ends a page without its body, a short table is never split, a long one never
leaves a row or two alone over the break, and a document that needs no break is left as it
is. Each case is laid out, written and read back from the PDF with pypdf."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytestmark = pytest.mark.gui


def _pages(tmp_path, body: str) -> list[str]:
    from pypdf import PdfReader

    from spfde_gui.report import plots
    from spfde_gui.report.pdf import write_pdf
    plots.ensure_app()
    path = write_pdf(f"<html><body>{body}</body></html>", {}, tmp_path / "r.pdf", "test")
    return [" ".join(p.extract_text().split()) for p in PdfReader(str(path)).pages]


def _filler(lines: int) -> str:
    return "".join(f"<p>filler line {i}</p>" for i in range(lines))


def _table(name: str, rows: int) -> str:
    cells = "".join(f"<tr><td>{name} row {i}</td><td>{i}</td></tr>" for i in range(rows))
    return f'<table width="100%"><tr><th>{name}</th><th>value</th></tr>{cells}</table>'


def _page_of(pages: list[str], text: str) -> int:
    hits = [i for i, p in enumerate(pages) if text in p]
    assert hits, f"{text!r} is on no page"
    return hits[0]


@pytest.mark.parametrize("filler", range(30, 46, 3))
def test_a_heading_stays_with_its_table(tmp_path, filler):
    # the filler moves the heading through the bottom of page 1
    pages = _pages(tmp_path, _filler(filler) + "<h2>Memory heading</h2>" + _table("mem", 6))
    assert _page_of(pages, "Memory heading") == _page_of(pages, "mem row 0") == _page_of(pages, "mem row 5")


@pytest.mark.parametrize("filler", range(30, 46, 3))
def test_a_long_table_never_leaves_one_row_alone(tmp_path, filler):
    pages = _pages(tmp_path, _filler(filler) + "<h2>Settings heading</h2>" + _table("cfg", 70))
    for i in range(len(pages)):
        rows = pages[i].count("cfg row")
        assert rows == 0 or rows >= 2, f"page {i + 1} holds {rows} row(s) of the table"
    assert _page_of(pages, "Settings heading") == _page_of(pages, "cfg row 0")


def test_a_short_document_is_left_as_it_is(tmp_path):
    pages = _pages(tmp_path, "<h2>Summary</h2>" + _table("sum", 5))
    assert len(pages) == 1 and "sum row 4" in pages[0]
