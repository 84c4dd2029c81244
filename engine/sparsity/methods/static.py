"""A random mask at the target sparsity, fixed for the whole run (the cheapest baseline)."""
from __future__ import annotations

from .base import Method


class Static(Method):
    name = "static"
    summary = "random mask at the target sparsity, never updated"
