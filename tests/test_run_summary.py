"""The terminal's end-of-run summary: accuracy, time, FLOPs saved by technique, the folder,
and for a stopped run the resume command."""
import io

from engine.run.events import make_event
from engine.run.progress import ProgressBar
from engine.run.summary import summary_lines

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
    bar = ProgressBar(out)
    bar.on_event(make_event("run_started", run_id="r", run_dir="runs/demo-1", config={"epochs": 4}, device="cpu",
                            dataset={}, model={}, freeze_plan=None, projected=None, resumed=False, start_epoch=0))
    bar.on_event(make_event("progress", epoch=3, batch=5, batches=10, loss=1.0, images_per_s=10.0))
    bar.on_event(make_event("run_finished", **FIN))
    text = out.getvalue()
    assert "\nrun stopped: 3 epochs" in text          # the open bar is ended (and kept) first
    assert "batch 5/10" in text.split("\nrun stopped")[0]
    assert text.rstrip().endswith("resume with: spfde-train resume runs/demo-1")


def _started(epochs: int = 4):
    return make_event("run_started", run_id="r", run_dir="runs/demo-1", config={"epochs": epochs}, device="cpu",
                      dataset={}, model={}, freeze_plan=None, projected=None, resumed=False, start_epoch=0)


def test_tqdm_bar_shows_batch_speed_and_time_left_for_epoch_and_run():
    """The bar (tqdm on a StringIO) says the batch, images/s, the epoch's and the run's time left."""
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.on_event(_started(epochs=4))
    bar.on_event(make_event("progress", epoch=0, batch=2, batches=10, loss=1.5, images_per_s=640.0))
    bar._epoch_start -= 4.0            # as if the 2 batches took 4 s: 16 s left in the epoch
    bar.on_event(make_event("progress", epoch=0, batch=4, batches=10, loss=1.25, images_per_s=812.0))
    line = out.getvalue().split("\r")[-1]
    assert "epoch 1/4" in line and "batch 4/10" in line and "812 img/s" in line and "loss 1.250" in line
    # the run: 6 of 10 batches left at ~1 s per batch, then 3 more epochs of ~10 s each
    left = bar.run_left(0, 4, 10)
    assert left is not None and 30 < left < 60
    assert "run 00:" in line and " left" in line
    assert "<" in line and "epoch," in line             # tqdm's [elapsed<remaining epoch, ...]
    # after an epoch the run's estimate uses that epoch's measured duration
    bar.on_event(make_event("epoch_end", epoch=0, epochs=4, train_loss=1.0, train_acc=0.5, test_acc=None,
                            epoch_time=100.0))
    assert "epoch 1/4 train loss 1.000 acc 0.500 | 100.0s\n" in out.getvalue()
    bar.on_event(make_event("progress", epoch=1, batch=5, batches=10, loss=1.0, images_per_s=800.0))
    left = bar.run_left(1, 5, 10)
    assert left is not None and left >= 200      # two more epochs at 100 s each
    assert "epoch 2/4" in out.getvalue().split("\r")[-1]


def test_bar_never_imports_tqdm_before_a_progress_event():
    import subprocess
    import sys
    code = ("import sys, io; from engine.run.telemetry import Emitter; "
            "em = Emitter(None, stream=io.StringIO(), progress_bar=True); em.emit('run_started', config={}); "
            "print('tqdm' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr
