"""Event-fuzz figure for docs/trust.md: N random mutations of real events.jsonl lines, each
batch replayed from a file through RunModel, analysis data and the HTML report; counts
crashes (any exception). Usage: python benchmarks/event_fuzz.py [N] [--views]"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spfde_gui.model.run_model import RunModel  # noqa: E402
from tests.event_fuzz import mutated_lines, real_events  # noqa: E402
from tests.test_event_fuzz import exercise  # noqa: E402

BATCH = 500


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
    base = [json.dumps(e) for e in real_events()]
    crashes = skipped = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(0, n, BATCH):
            lines = mutated_lines(min(BATCH, n - i), seed=i)
            d = Path(tmp) / f"r{i}"
            d.mkdir()
            (d / "events.jsonl").write_text("\n".join(base[:1] + lines + base[1:]) + "\n")
            try:
                m = RunModel.load(d)
                exercise(m)
                skipped += m.n_skipped
            except Exception:  # noqa: BLE001 - counting crashes is the point
                crashes += 1
                traceback.print_exc(limit=3)
    dt = time.perf_counter() - t0
    print(f"mutations: {n}  crashes: {crashes}  lines skipped by the guard: {skipped} "
          f"({100 * skipped / max(n, 1):.1f}%)  time: {dt:.1f} s  load average: {os.getloadavg()}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
