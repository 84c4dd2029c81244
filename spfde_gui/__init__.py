"""SpFDE Studio: the desktop app (PySide6 + pyqtgraph). Never imports torch."""
__version__ = "0.1.0"
