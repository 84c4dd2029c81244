"""Datasets. ``sources`` reads them with numpy/PIL only (the GUI uses it for thumbnails);
``loaders`` wraps them in torch for training (imported only by the engine)."""
from .sources import DatasetError, load_split, sample_image  # noqa: F401
