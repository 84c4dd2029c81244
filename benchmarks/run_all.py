"""Run every benchmark at its small CPU setting, one after another (each prints its table).

GPU figures: run the scripts one by one with ``--device cuda`` and larger sizes (see
docs/benchmarks.md for the commands).
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [   # the settings behind the figures in docs/benchmarks.md (about 20 minutes on 2 cores)
    ["bench_engine_overhead.py", "--device", "cpu", "--model", "resnet20", "--width", "0.5",
     "--image-size", "32", "--train-size", "2000", "--batch-size", "128", "--epochs", "4", "--rounds", "5"],
    ["bench_freezing.py", "--device", "cpu", "--threads", "2", "--train-size", "2048", "--epochs", "10",
     "--rounds", "3"],
    ["bench_sieving.py", "--device", "cpu", "--threads", "2", "--train-size", "2048", "--width", "0.5",
     "--epochs", "8"],
    ["bench_gui.py"],
    ["bench_cpu_threads.py", "--train-size", "640"],
    ["bench_analysis_overhead.py", "--device", "cpu", "--train-size", "1000", "--epochs", "2", "--every", "2",
     "--threads", "1", "--rounds", "2"],
    ["bench_adaptive_freeze.py", "--device", "cpu", "--epochs", "12", "--width", "0.25", "--image-size", "16",
     "--train-size", "512", "--test-size", "256", "--target", "0.1", "--every", "1", "--probe-size", "128",
     "--threads", "1", "--workers", "0"],
    ["bench_stale_projection.py", "--epochs", "3000"],   # docs/benchmarks.md used 10000 (slower)
]

if __name__ == "__main__":
    failed = 0
    for args in RUNS:
        print(f"\n=== {' '.join(args)}", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / args[0]), *args[1:]]) != 0
    sys.exit(1 if failed else 0)
