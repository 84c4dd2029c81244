"""Sparse training: exact-count masks, the Sparsifier component and the method plug-ins.

``engine.sparsity.methods`` is pure Python (the planner and the config validator import it),
so the torch component is loaded only when asked for.
"""


def __getattr__(name):
    if name == "Sparsifier":
        from .sparsifier import Sparsifier  # torch: only when the component is asked for
        return Sparsifier
    raise AttributeError(name)


__all__ = ["Sparsifier"]
