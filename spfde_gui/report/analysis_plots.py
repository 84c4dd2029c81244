"""The report's figures of the Section 3 analyses (spfde_gui.model.analysis_data): CKA and
structural-similarity heat maps (rows x epochs) and block gradient norms, with the
epochs at which blocks froze drawn on them. SVG bytes, like spfde_gui.report.plots (the heat
maps' cells are drawn as rectangles: vectors, not an embedded image)."""
from __future__ import annotations

import numpy as np

from spfde_gui.model import analysis_data as AD
from spfde_gui.palette import RED
from spfde_gui.report import plots as P


def _heat(model, kind: str, title: str) -> bytes | None:
    from spfde_gui.views.analysis import NAN_INDEX, _lut, label_width, to_indices  # Qt: only when drawn
    names, mat = AD.heat(model, kind)
    if not names or not np.isfinite(mat).any():
        return None
    pg = P._pg()
    win, font = P._layout(pg)
    win.resize(P.FIG_W, min(max(P.FIG_H, 56 + 12 * len(names)), P.MAX_H))
    plot = win.addPlot()
    idx, lo = to_indices(mat)
    P._style(plot, font, f"{title} (colour {lo:.1f} → 1, grey: not measured; ▶: block frozen)", "epoch", "")
    img = pg.ImageItem(idx)
    img.setLookupTable(_lut())
    img.setLevels([0, NAN_INDEX])
    img.setRect(0.5, 0, mat.shape[1], mat.shape[0])   # column e centred on e + 1: epochs as people count
    plot.addItem(img)
    plot.showGrid(x=False, y=False)    # grid lines across the cells would read as borders
    plot.invertY(True)
    marks = AD.freeze_marks(model, names)
    if marks:
        plot.plot([e + 0.5 for e, _ in marks], [r + 0.5 for _, r in marks], pen=None, symbol="t2", symbolSize=8,
                  symbolBrush="#ffffff", symbolPen=pg.mkPen(RED, width=1.2))
    step = max(1, len(names) // 30)
    ax = plot.getAxis("left")
    ax.setTicks([[(i + 0.5, n) for i, n in enumerate(names) if i % step == 0]])
    ax.setStyle(tickLength=0)
    ax.setWidth(label_width(names))
    plot.setRange(xRange=(0.5, mat.shape[1] + 0.5), yRange=(0, mat.shape[0]), padding=0)
    plot.getViewBox().setMouseEnabled(False, False)
    return P._export(win)


def cka_heat(model) -> bytes | None:
    return _heat(model, "cka", "CKA of each block's output with the previous measurement")


def similarity_heat(model) -> bytes | None:
    kind = "similarity_to_final" if any("similarity_to_final" in e for e in model.analysis_events) \
        else "mask_similarity"
    what = "the final mask" if kind == "similarity_to_final" else "the previous measurement"
    return _heat(model, kind, f"Structural similarity of the top-half weights with {what}")


def grad_norms(model) -> bytes | None:
    """Fig. 3b: how much each block's mean gradient norm changes from one epoch to the next."""
    names, epochs, g = AD.grad_norm_differences(model)
    if not names or not (np.isfinite(g) & (g > 0)).any():
        return None
    pg = P._pg()
    win, font = P._layout(pg)
    plot = win.addPlot()
    P._style(plot, font, "Change of each block's mean gradient norm between epochs (dashed: block frozen)",
             "epoch", "|g(e) − g(e−1)| (log)")
    plot.setLogMode(y=True)
    P._legend(plot)
    from spfde_gui.views.base import PALETTE  # Qt: only when drawn
    for i, n in enumerate(names):
        ok = np.isfinite(g[i]) & (g[i] > 0)
        if ok.any():
            P._line(pg, plot, epochs[ok] + 1, g[i][ok], PALETTE[i % len(PALETTE)], n)
    from PySide6.QtCore import Qt
    for _b, e in AD.freeze_epochs(model).items():
        plot.addItem(pg.InfiniteLine(pos=e + 0.5, angle=90, pen=pg.mkPen(RED, width=1, style=Qt.DashLine)))
    plot.getViewBox().setMouseEnabled(False, False)
    return P._export(win)


FIGURES = (
    ("analysis_cka", "CKA of block outputs over training (Fig. 1b)"),
    ("analysis_similarity", "Structural similarity of sparse layers (Fig. 1a)"),
    ("analysis_grad", "Block gradient norms: change between epochs (Fig. 3b)"),
)


def render(model) -> dict[str, bytes | None]:
    if not AD.has_analysis(model):
        return {}
    return {"analysis_cka": cka_heat(model), "analysis_similarity": similarity_heat(model),
            "analysis_grad": grad_norms(model)}
