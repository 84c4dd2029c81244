"""Sweeps: a grid of settings x seeds run as ordinary runs into one sweep folder.

A sweep is a folder of runs plus a manifest (docs/sweeps.md):

    sweeps/<name>-<ts>/sweep.yaml       the expanded cells (setting, seed, full config)
    sweeps/<name>-<ts>/configs/<cell>.yaml  each cell's run configuration
    sweeps/<name>-<ts>/<cell>-<ts>/     one ordinary run folder per cell
    sweeps/<name>-<ts>/results.jsonl    one line per finished (completed or failed) cell
    sweeps/<name>-<ts>/sweep_events.jsonl  the sweep-level events

Pure Python except ``runner`` (which starts cells as subprocesses, never torch in-process):
spec (the sweep file), cells (expansion, validation, planning), manifest (the folder),
state (what each cell needs next), results (aggregation), export (CSV/Markdown/LaTeX).
Nothing in the trainer knows a run belongs to a sweep.
"""
