"""`spfde-train sweep` at a terminal prints progress lines, as `run` does; the JSON events
still reach the sweep folder."""
from __future__ import annotations

import io
import json

from engine.sweep import cells as cells_mod
from engine.sweep import manifest, runner, spec
from engine.sweep.progress import SweepPrinter
from tests.test_sweep import TINY


def test_a_terminal_gets_cell_and_epoch_lines_and_no_json(tmp_path):
    s = spec.parse({"name": "tty", "base": {"preset": "demo"}, "overrides": TINY,
                    "axes": {"optim.lr": [0.05]}, "seeds": 1})      # one cell: each costs an engine start
    m = manifest.create(s, cells_mod.expand(s), tmp_path)
    json_out, human = io.StringIO(), io.StringIO()
    assert runner.run(m, gpus="cpu", out=json_out, human=human) == 0
    assert json_out.getvalue() == ""                               # no JSON on the terminal
    text = human.getvalue()
    assert "sweep tty: 1 cells, 1 to run" in text
    assert "[1/1] starting tty-c000 (optim.lr=0.05, seed 0)" in text
    assert "tty-c000: epoch 1/2, test acc" in text and "tty-c000: epoch 2/2, test acc" in text
    assert "[1/1] finished tty-c000: final test acc" in text
    assert "sweep completed: 1 completed, 0 failed, 0 remaining" in text
    kinds = [json.loads(line)["event"] for line in (m.dir / manifest.EVENTS).read_text().splitlines()]
    assert kinds[0] == "sweep_started" and kinds[-1] == "sweep_finished" and kinds.count("cell_finished") == 1


def test_failures_and_stops_read_as_such():
    out = io.StringIO()
    p = SweepPrinter(out)
    p.on_sweep_event({"event": "sweep_started", "sweep": "s", "cells": 3, "todo": 3, "sweep_dir": "/x"})
    p.on_sweep_event({"event": "cell_failed", "cell": "s-c001", "index": 1, "error": "boom", "will_retry": True})
    p.on_sweep_event({"event": "cell_stopped", "cell": "s-c002", "index": 2})
    lines = out.getvalue().splitlines()
    assert lines[1] == "[2/3] FAILED s-c001: boom; it will be retried"
    assert "rerun the sweep to resume it" in lines[2]
