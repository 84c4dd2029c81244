"""The Analyses heat maps on runs with 0, 1, 2 and 28 measured epochs: no ZeroDivisionError
from ImageItem.setRect (a run stopped after epoch 1, an engine just started), and the axis
spans the measured epochs."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("epochs", [0, 1, 2, 28])
def test_heat_map_sizes(qtbot, epochs):
    import pyqtgraph as pg

    from spfde_gui.views.analysis import _Heat
    glw = pg.GraphicsLayoutWidget()
    qtbot.addWidget(glw)
    heat = _Heat(glw, 0, "CKA")
    names = ["stem", "layer1.0", "head"]
    mat = np.linspace(0.2, 1.0, 3 * epochs).reshape(3, epochs) if epochs else np.zeros((3, 0))
    heat.set(names, mat, [(0, 0)] if epochs else [])
    (x0, x1), _ = heat.plot.vb.viewRange()
    if epochs:
        assert heat.value_at(epochs, 0.5).startswith(f"stem · epoch {epochs}:")
        assert x0 == pytest.approx(0.5) and x1 == pytest.approx(epochs + 0.5)
    else:
        assert heat.values is None and heat.value_at(1.0, 0.5) is None
        assert "not measured yet" in heat.plot.titleLabel.text
        assert x1 - x0 == pytest.approx(1.0)
