"""Engine parts on their own: the emitter, stdin commands, atomic checkpoints, LR schedule."""
from __future__ import annotations

import errno
import io
import json
import logging

import pytest
import torch

from engine.config import RunConfig
from engine.run.control import CommandChannel, parse_command
from engine.run.events import parse_line, validate_event
from engine.run.telemetry import Emitter
from engine.training import checkpoint as ckpt
from engine.training.lr_schedule import block_lr

# ----------------------------------------------------------------------------- emitter

def test_emitter_writes_stdout_and_file_per_line(tmp_path):
    out = io.StringIO()
    em = Emitter(tmp_path, stream=out, progress_bar=False)
    em.emit("checkpoint", epoch=1, batch=0, path="x", reason="end", bytes=3)
    # visible in the file before close (flushed per line)
    assert (tmp_path / "events.jsonl").read_text() == out.getvalue()
    ev = parse_line(out.getvalue().splitlines()[0])
    assert validate_event(ev) == [] and ev["reason"] == "end"
    em.emit("epoch_end", epoch=0, train_loss=float("nan"))      # NaN becomes null, still JSON
    assert json.loads(out.getvalue().splitlines()[1])["train_loss"] is None
    em.close()


def test_emitter_survives_an_unwritable_events_file(tmp_path, caplog):
    out = io.StringIO()
    gone = tmp_path / "not-yet"
    em = Emitter(gone, stream=out, progress_bar=False)      # its folder does not exist: open fails
    with caplog.at_level(logging.WARNING, logger="engine"):
        for i in range(3):
            em.emit("unfreeze", epoch=i, block="stem", block_index=0)
    assert len(out.getvalue().splitlines()) == 3              # stdout never loses a line
    warnings = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(warnings) == 1                                 # warned once, not per event
    gone.mkdir()                                              # space again: the kept lines follow
    em.emit("unfreeze", epoch=3, block="stem", block_index=0)
    evs = [parse_line(l) for l in (gone / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in evs if e] == [0, 1, 2, 3]
    em.close()


def test_emitter_full_disk_mid_write_keeps_streaming(tmp_path):
    out = io.StringIO()
    em = Emitter(tmp_path, stream=out, progress_bar=False)
    em.emit("unfreeze", epoch=0, block="stem", block_index=0)

    class FullDisk(io.StringIO):
        def write(self, s):
            raise OSError(errno.ENOSPC, "No space left on device")

    em._fh = FullDisk()
    em.emit("unfreeze", epoch=1, block="stem", block_index=0)
    em.emit("unfreeze", epoch=2, block="stem", block_index=0)
    assert len(out.getvalue().splitlines()) == 3
    em.emit("unfreeze", epoch=3, block="stem", block_index=0)   # reopens the real file
    evs = [parse_line(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in evs if e] == [0, 1, 2, 3]
    em.close()


def test_progress_is_throttled(tmp_path):
    out = io.StringIO()
    em = Emitter(None, stream=out, progress_bar=False)
    calls = []
    sent = [em.progress(0, b, 100, loss_fn=lambda: calls.append(1) or 1.0) for b in range(50)]
    assert sent[0] and sum(sent) == 1 and len(calls) == 1    # the loss is only read when sent


# ----------------------------------------------------------------------------- commands

@pytest.mark.parametrize("line,cmd", [
    ('{"cmd": "stop"}', "stop"), ('{"cmd":"checkpoint"}\n', "checkpoint"), ("stop\n", "stop"),
    ("  CHECKPOINT ", "checkpoint"), ("", None), ("pause", None), ('{"cmd": "explode"}', None),
    ("{not json", None), ("[1, 2]", None),
])
def test_parse_command(line, cmd):
    assert parse_command(line) == cmd


def _drain(ch: CommandChannel) -> None:
    ch._thread.join(timeout=5)
    assert not ch._thread.is_alive()


def test_stdin_commands_and_eof_does_not_stop():
    ch = CommandChannel()
    ch.start_stdin(io.StringIO('junk\n{"cmd": "checkpoint"}\n'))
    _drain(ch)
    assert not ch.should_stop                                 # EOF after the lines: keep training
    assert ch.take_checkpoint_request() and not ch.take_checkpoint_request()
    ch = CommandChannel()
    ch.start_stdin(io.StringIO("stop\n"))
    _drain(ch)
    assert ch.should_stop


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_save_prune_and_load(tmp_path):
    for e in range(1, 5):
        ckpt.save(tmp_path, {"position": {"epoch": e}}, epoch_tag=e, keep=2)
    d = ckpt.checkpoint_dir(tmp_path)
    assert sorted(p.name for p in d.iterdir()) == ["epoch_0003.pt", "epoch_0004.pt", "last.pt"]
    assert ckpt.load(tmp_path)["position"]["epoch"] == 4
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        ckpt.load(tmp_path / "elsewhere")


def test_failed_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    ckpt.save(tmp_path, {"position": {"epoch": 1}, "w": torch.ones(3)})
    real_save = torch.save

    def full_disk(obj, fh, *a, **k):
        fh.write(b"partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ckpt.CheckpointError, match="No space"):
        ckpt.save(tmp_path, {"position": {"epoch": 2}})
    monkeypatch.setattr(torch, "save", real_save)
    d = ckpt.checkpoint_dir(tmp_path)
    assert [p.name for p in d.iterdir()] == ["last.pt"]       # no temporary file left behind
    assert ckpt.load(tmp_path)["position"]["epoch"] == 1


def test_rng_state_round_trip():
    st = ckpt.rng_state()
    a = torch.rand(3)
    ckpt.set_rng_state(st)
    assert torch.equal(a, torch.rand(3))


# ----------------------------------------------------------------------------- LR schedule

def test_block_lr_warmup_cosine_and_end():
    cfg = RunConfig()
    cfg.epochs, cfg.optim.lr, cfg.optim.end_lr, cfg.optim.warmup_epochs = 20, 0.2, 0.001, 4
    lrs = [block_lr(cfg, e) for e in range(25)]
    assert lrs[:4] == pytest.approx([0.05, 0.1, 0.15, 0.2])
    assert lrs[4] == pytest.approx(0.2)
    assert all(a > b for a, b in zip(lrs[4:19], lrs[5:20]))     # decreasing cosine
    assert lrs[12] == pytest.approx((0.2 + 0.001) / 2)         # midpoint of the cosine
    assert lrs[20:] == [0.001] * 5                               # end_lr at and after the end
    # a block that freezes at epoch 10 reaches end_lr there
    assert block_lr(cfg, 10, 10) == 0.001 and block_lr(cfg, 9, 10) < block_lr(cfg, 9)


def test_progress_bar_goes_to_stderr_only(capsys):
    out = io.StringIO()
    em = Emitter(None, stream=out, progress_bar=True)
    em.emit("run_started", config={"epochs": 3})
    em.progress(0, 5, 10, loss_fn=lambda: 1.25, images_per_s=100.0, force=True)
    em.emit("epoch_end", epoch=0, epochs=3, train_loss=1.0, train_acc=0.5, test_acc=0.4, epoch_time=2.0)
    em.close()
    err = capsys.readouterr().err
    assert "epoch 1/3" in err and "loss 1.250" in err and "test acc 0.400" in err
    assert all(parse_line(l) for l in out.getvalue().splitlines())   # stdout: events only
    assert Emitter(None, stream=io.StringIO()).bar is None           # not a terminal: no bar


def test_emitter_ends_a_torn_last_line_before_appending(tmp_path):
    """A killed run can leave half a line; the resume's first event must still parse."""
    import io

    from engine.run.events import read_events
    from engine.run.telemetry import Emitter
    (tmp_path / "events.jsonl").write_text('{"event":"epoch_end","v":1,"time":1}\n{"event":"epoch_e')
    em = Emitter(tmp_path, stream=io.StringIO(), progress_bar=False)
    em.emit("run_started", resumed=True)
    em.close()
    evs = list(read_events(tmp_path / "events.jsonl"))
    assert [e["event"] for e in evs] == ["epoch_end", "run_started"]


def test_stop_on_eof_turns_a_closed_stdin_into_a_stop():
    import io

    from engine.run.control import CommandChannel
    kept, stopping = CommandChannel(), CommandChannel()
    kept.start_stdin(io.StringIO('{"cmd": "checkpoint"}\n'))
    stopping.start_stdin(io.StringIO(""), stop_on_eof=True)
    # wait for the readers to reach the end of their streams, however slow the machine
    assert stopping.wait_stdin_closed(timeout=60) and kept.wait_stdin_closed(timeout=60)
    assert stopping.should_stop
    assert kept.take_checkpoint_request() and not kept.should_stop


def test_a_terminal_gets_no_json_unless_asked(tmp_path):
    import io

    from engine.run.telemetry import Emitter

    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet, loud = Tty(), Tty()
    for out, flag in ((quiet, None), (loud, True)):
        em = Emitter(tmp_path / ("q" if flag is None else "l"), stream=out, progress_bar=False, stream_events=flag)
        (tmp_path / ("q" if flag is None else "l")).mkdir()
        em.emit("checkpoint", epoch=1, batch=0, path="x", reason="end", bytes=1)
        em.close()
    assert quiet.getvalue() == "" and '"checkpoint"' in loud.getvalue()
    assert '"checkpoint"' in (tmp_path / "q" / "events.jsonl").read_text()   # the file always has them
