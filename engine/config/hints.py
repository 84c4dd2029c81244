"""A configuration error's suggested fix, written as the command-line overrides that apply it.

``ConfigError.suggestions`` maps a field to a value the engine would accept (for an
unreachable ``freeze.target``: the largest reachable target, rounded down). The CLI prints
them as the exact ``--set`` to add; the studio offers the same value as a one-click fix.
"""
from __future__ import annotations

from engine.config.schema import ConfigError


def shown(value: object) -> str:
    """A suggested value as a ``--set`` or a YAML file spells it (true/false, not True/False)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def set_args(exc: ConfigError | dict) -> list[str]:
    """``["--set", "freeze.target=0.136", ...]`` for every suggestion of ``exc`` (or of a
    field -> value mapping)."""
    suggestions = exc if isinstance(exc, dict) else exc.suggestions
    out: list[str] = []
    for field, value in suggestions.items():
        out += ["--set", f"{field}={shown(value)}"]
    return out


def set_hint(exc: ConfigError) -> str:
    """One line naming the overrides that fix ``exc`` ("" when it has no suggestion)."""
    args = set_args(exc)
    if not args:
        return ""
    return "hint: rerun with " + " ".join(args)
