"""The `spfde-train` commands the README and docs/ show, extracted so a test can run them.

Only concrete commands are taken: a line (in a code block or inline code) that starts with
``spfde-train validate|plan|run|sweep`` and names a real config, preset or sweep file. Lines
with placeholders (``F``, ``RUN_DIR``, ``...``, ``<ts>``) are documentation of the syntax,
not something to run as written.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_CMD_RE = re.compile(r"(?:\.venv/bin/)?spfde-train\s+(validate|plan|run|sweep)\b([^`|\n]*)")
_PLACEHOLDER_RE = re.compile(r"(\.\.\.|<[^>]*>|\bRUN_DIR\b|\bSWEEP_DIR\b|\bFILE\b|\s--config F\b|\(|\))")


def _clean(rest: str) -> list[str] | None:
    rest = rest.split("#", 1)[0]                       # a trailing shell comment
    rest = re.sub(r"\[(--\w[\w-]*)\]", "", rest)      # an optional flag shown as [--json]
    if _PLACEHOLDER_RE.search(" " + rest) or "[" in rest:
        return None
    return shlex.split(rest)


def commands() -> list[tuple[str, int, list[str]]]:
    """(file, line, argv) for every concrete `spfde-train` command in the README and docs/."""
    out = []
    for path in DOCS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in _CMD_RE.finditer(line):
                args = _clean(m.group(2))
                if args is None:
                    continue
                if m.group(1) in ("validate", "plan", "run") and not {"--config", "--preset"} & set(args):
                    continue                           # prose such as "`spfde-train run` creates"
                if m.group(1) == "sweep" and not args:
                    continue
                out.append((path.name, n, [m.group(1), *args]))
    return out


if __name__ == "__main__":
    for f, n, argv in commands():
        print(f"{f}:{n}: {' '.join(argv)}")
