"""The terminal's end-of-run summary: accuracy, time, FLOPs saved by technique, the folder,
and for a stopped run the resume command."""
import io

from engine.run.events import make_event
from engine.run.summary import summary_lines
from engine.run.telemetry import _ProgressBar

FIN = {"status": "stopped", "epochs_completed": 3, "final": {"test_acc": 0.7712}, "wall_time": 75.2,
       "flops": {"dense": 100.0, "spent": 40.0, "saved": {"sparsity": 45.0, "freeze": 10.0, "sieve": 5.0}}}


def test_summary_lines():
    lines = summary_lines(FIN, "runs/demo-1")
    assert lines[0] == "run stopped: 3 epochs in 1m15s, test accuracy 77.12%"
    assert "sparsity 45.0%, freeze 10.0%, sieve 5.0%" in lines[1] and "spent 40.0% of dense" in lines[1]
    assert lines[-1] == "resume with: spfde-train resume runs/demo-1"
    assert not any("resume with" in x for x in summary_lines({**FIN, "status": "completed"}, "runs/demo-1"))


def test_progress_bar_prints_it_on_its_own_lines():
    out = io.StringIO()
    bar = _ProgressBar(out)
    bar.on_event(make_event("run_started", run_id="r", run_dir="runs/demo-1", config={"epochs": 4}, device="cpu",
                            dataset={}, model={}, freeze_plan=None, projected=None, resumed=False, start_epoch=0))
    bar.on_event(make_event("progress", epoch=3, batch=5, batches=10, loss=1.0, images_per_s=10.0))
    bar.on_event(make_event("run_finished", **FIN))
    text = out.getvalue()
    assert "\nrun stopped: 3 epochs" in text          # the open progress line is ended first
    assert text.rstrip().endswith("resume with: spfde-train resume runs/demo-1")
