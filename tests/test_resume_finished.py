"""Resuming a completed run appends nothing (it used to add a run_started/run_finished pair
and the report then said "resumed 2x")."""
import shutil

from engine import cli
from engine.config import preset_path
from engine.run.events import dumps, make_event
from engine.run.finished import completed_epochs


def _run_dir(tmp_path, status="completed", epochs=28):
    d = tmp_path / "demo-20261206-150000"
    d.mkdir()
    shutil.copy(preset_path("demo"), d / "config.yaml")
    evs = [make_event("run_started", run_id=d.name, run_dir=str(d), config={"epochs": 28}, device="cpu",
                      dataset={}, model={}, freeze_plan=None, projected=None, resumed=False, start_epoch=0),
           make_event("run_finished", status=status, epochs_completed=epochs, final={}, flops={}, wall_time=1.0)]
    (d / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    return d


def test_completed_epochs_reads_the_last_session(tmp_path):
    assert completed_epochs(_run_dir(tmp_path)) == 28
    assert completed_epochs(tmp_path / "nothing") is None


def test_stopped_run_is_not_completed(tmp_path):
    assert completed_epochs(_run_dir(tmp_path, status="stopped", epochs=3)) is None


def test_resume_of_a_completed_run_appends_nothing(tmp_path, capsys):
    from tests.test_faults import _run
    d = _run(tmp_path, epochs=2)                       # a real tiny run: its checkpoint is at the end
    before = (d / "events.jsonl").read_bytes()
    assert cli.main(["resume", str(d)]) == 0
    assert (d / "events.jsonl").read_bytes() == before
    err = capsys.readouterr().err
    assert "already completed (2 epochs)" in err and "--allow-change epochs" in err


def test_a_fake_completed_log_without_checkpoint_still_resumes_from_its_config(tmp_path):
    from engine.training.resume import prepare
    d = _run_dir(tmp_path)                             # events say completed, no checkpoint
    assert cli._nothing_to_resume(d, prepare(d, [])) is None
