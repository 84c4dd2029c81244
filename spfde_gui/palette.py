"""The studio's colours, one definition for the window and the report (pure Python).

A FLOPs source, a run status or a train/test series has the same colour in every plot,
table and PDF. The hues are Tableau 10's, which stay distinct in greyscale print.
"""
from __future__ import annotations

from engine.run.events import RUN_STATUSES


def rgba(hex_colour: str) -> tuple[int, int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), 255

BLUE, ORANGE, GREEN, RED, PURPLE = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"
BROWN, PINK, GREY, OLIVE, CYAN = "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"

# Series cycled for overlaid runs, blocks and other unordered sets.
SERIES = [BLUE, RED, GREEN, PURPLE, ORANGE, CYAN, BROWN, PINK, OLIVE, GREY]

TRAIN, TEST = BLUE, RED

# FLOPs spent and saved, by source (the stacked bars, the cumulative curves, the preview).
SOURCE_COLORS = {"spent": BLUE, "sparsity": "#8fbc8f", "freeze": ORANGE, "sieve": PURPLE}
SOURCE_LABELS = {"spent": "spent", "sparsity": "saved by sparsity", "freeze": "saved by freezing",
                 "sieve": "saved by sieving"}

# The data sieve's queue.
SIEVE_COLORS = {"active_size": GREEN, "removed_size": RED, "initial_waiting": ORANGE, "histogram": PURPLE}

# Freeze timelines: a block active, frozen, or an epoch not run yet.
ACTIVE_BLOCK, FROZEN, NOT_RUN = "#c6e6c4", "#3b6fb6", "#f0f0f0"

# Run statuses: the engine's own final statuses (engine.run.events.RUN_STATUSES) plus the
# states only the studio knows (before the engine speaks, while it runs, after it dies).
STUDIO_STATUSES = ("new", "starting", "running", "killed", "crashed", "refused")
STATUS_COLORS = {"new": "#777777", "starting": "#5b8fc7", "running": BLUE, "killed": "#8c564b",
                 "crashed": RED, "completed": GREEN, "stopped": ORANGE, "refused": "#b9770e"}
for _s in RUN_STATUSES:                 # a final status a newer engine adds: still drawn
    STATUS_COLORS.setdefault(_s, GREY)
