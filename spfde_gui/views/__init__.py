"""Live views of a RunModel. Each redraws only when the model's version changed, and
shows a clear empty state while it has nothing to draw."""
from spfde_gui.views.analysis import AnalysisView
from spfde_gui.views.base import RunView
from spfde_gui.views.flops import FlopsView
from spfde_gui.views.freeze import FreezeView
from spfde_gui.views.hardware import HardwareView
from spfde_gui.views.sieve import SieveView
from spfde_gui.views.training import TrainingView

__all__ = ["RunView", "TrainingView", "FreezeView", "SieveView", "HardwareView", "FlopsView", "AnalysisView"]
