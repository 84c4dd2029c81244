"""benchmarks/gpu_check.sh is run once on a lent GPU machine: its shell syntax and its summary
writer are checked here, so that run cannot be lost to a typo."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_check_summary as S  # noqa: E402

FREEZE_LOG = """Setting: resnet32 width 2, 32px.

| FLOPs target | plan start epoch | FLOPs saved (run) | epoch time, trainer (s) | time saved, trainer | realised/expected, trainer | time saved, steps | realised/expected, steps | saved activations at max prefix | paper time saved |
|---|---|---|---|---|---|---|---|---|---|
| 0% | - | 0.00% | 1.000 | 0.00% | nan | 0.00% | nan | 1 MiB | - |
| 10% | 4 | 10.00% | 0.900 | 9.70% | 0.97 | 9.0% | 0.90 | 1 MiB | 8.93% |
| 20% | 2 | 20.00% | 0.850 | 15.00% | 0.75 | 19.5% | 0.98 | 1 MiB | 18.83% |
"""
SIEVE_LOG = """| removal | active samples | batches | epoch CPU time (s) | time saved | FLOPs saved | realised/expected | wall epoch time (s) | wall time saved | paper (Table A12) |
|---|---|---|---|---|---|---|---|---|---|
| baseline | 100 | 2 | 1.0 | - | - | - | 1.0 | - | 46.94 s/epoch |
| 20% | 80 | 2 | 0.8 | 20.00% | 20.00% | 1.00 | 0.81 | 19.00% | 19.5% faster |
"""


def test_the_script_parses():
    out = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_summary_reports_statuses_tables_and_the_95_percent_goal(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "environment.log").write_text("cuda available: 1, devices: 1\n")
    (logs / "freezing_fp32.log").write_text(FREEZE_LOG)
    (logs / "sieving_fp32.log").write_text(SIEVE_LOG)
    (logs / "ddp.log").write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    (logs / "parts.tsv").write_text("freezing_fp32\t0\t30\t60\tfreezing\nsieving_fp32\t0\t20\t45\tsieving\n"
                                    "ddp\t1\t5\t60\tddp\nspeed_resnet50\t124\t90\t90\tresnet50\n"
                                    "overhead\tskipped\t0\t40\toverhead (no time left in the budget)\n")
    assert S.main(["x", str(tmp_path), "123"]) == 0
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| freezing_fp32 | ok |" in md and "| ddp | FAILED (exit 1) |" in md
    assert "| speed_resnet50 | TIMEOUT (90 s) |" in md and "| overhead | skipped |" in md
    assert "10%: 0.97 (meets the 95% goal, steps 0.90)" in md
    assert "20%: 0.75 (below the 95% goal" in md
    assert "20%: 0.95 (meets the 95% goal)" in md          # sieving: wall 19% of 20% FLOPs
    assert "RuntimeError: boom" in md                      # a failed part shows its log's end
    assert "Total time: 123 s." in md
