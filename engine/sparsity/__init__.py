"""Dynamic sparse training: exact-count masks and the Sparsifier component."""
from .sparsifier import Sparsifier

__all__ = ["Sparsifier"]
