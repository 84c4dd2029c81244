"""Fault injection (issue 15, items 1-9): crafted and corrupted files, lost checkpoints, changed
or missing configurations, two engines on one folder, a full disk at start, garbage on stdin.

Every test here failed before the fix it covers. Training runs in-process on a configuration
of a few dozen samples, so the whole module takes seconds."""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from engine import cli
from engine import config as C
from engine.data import sources
from engine.run import folder as run_dir_mod
from engine.run.control import CommandChannel
from engine.training import checkpoint as ckpt

TINY = {
    "name": "faults", "seed": 5, "device": "cpu", "epochs": 3, "batch_size": 16, "interval": 1,
    "model": {"name": "resnet20", "width": 0.25},
    "data": {"name": "synthetic", "image_size": 8, "train_size": 48, "test_size": 16, "num_classes": 3},
    "sparsity": {"target": 0.5}, "sieve": {"ratio": 0.25},
    "checkpoint": {"every": 1, "keep": 2},
}


class _Evil:
    """Unpickling this creates ``marker``: the stand-in for any code a file could run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture(autouse=True)
def _fresh_log_handler():
    """cli.main installs its stderr log handler once per process: drop it around each test so
    that it writes to this test's captured stderr."""
    import logging

    def drop():
        root = logging.getLogger()
        for h in [h for h in root.handlers if getattr(h, "_spfde", False)]:
            root.removeHandler(h)
    drop()
    yield
    drop()


def _cfg(tmp_path, **over):
    d = json.loads(json.dumps(TINY))
    d["run_dir"] = str(tmp_path / "runs")
    for k, v in over.items():
        C._set_dotted(d, k, v)
    return C.from_dict(d)


def _run(tmp_path, **over) -> Path:
    """A completed tiny run in a fresh run folder (in-process); returns the folder."""
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = _cfg(tmp_path, **over)
    d = run_dir_mod.create(cfg)
    em = Emitter(d, stream=io.StringIO(), progress_bar=False)
    assert Trainer(cfg, d, em).fit() == "completed"
    em.close()
    return d


def _main(capsys, *argv) -> tuple[int, list[dict], str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    evs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return rc, evs, err


def _final(evs):
    return [e for e in evs if e["event"] == "epoch_end"][-1]


# ----------------------------------------------------------------------------- 1. no code from a checkpoint

def test_a_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    d = ckpt.checkpoint_dir(tmp_path)
    d.mkdir()
    state = {"format": ckpt.FORMAT, "position": {"epoch": 0}, "x": _Evil(marker)}
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    # a raw torch.save file (what the old engine wrote) and one with a valid header and checksum
    import hashlib
    header = b"%s %d %s %d\n" % (ckpt.MAGIC, ckpt.FORMAT, hashlib.sha256(payload).hexdigest().encode(), len(payload))
    for data in (payload, header + payload):
        (d / ckpt.LAST).write_bytes(data)
        with pytest.raises(ckpt.CheckpointError, match="last.pt"):
            ckpt.load(d / ckpt.LAST)
        assert not marker.exists()


def test_component_state_must_be_plain_data(tmp_path):
    ok = {"format": 0, "c": {"t": torch.arange(3), "n": 1, "f": 0.5, "s": "x", "l": [1, None, "a"], "none": None,
                             "nested": {"b": True, "tup": (1, 2)}}}
    ckpt.save(tmp_path, ok)
    back = ckpt.load(tmp_path)
    assert torch.equal(back["c"]["t"], torch.arange(3)) and back["c"]["l"] == [1, None, "a"]
    with pytest.raises(ckpt.CheckpointError, match=r"numpy.ndarray.*weights_only"):
        ckpt.save(tmp_path, {"components": {"mine": {"arr": np.zeros(3)}}})
    with pytest.raises(ckpt.CheckpointError, match=r"\['mine'\]\['arr'\]"):
        ckpt.save(tmp_path, {"components": {"mine": {"arr": np.zeros(3)}}})


def test_rng_states_load_weights_only_and_round_trip(tmp_path):
    import random
    buf = io.BytesIO()
    torch.save(ckpt.rng_state(), buf)
    buf.seek(0)
    torch.load(buf, weights_only=True)                # tensors and plain lists only
    ckpt.save(tmp_path, {"rng": ckpt.rng_state()})
    a = (torch.rand(2), np.random.rand(), random.random())
    ckpt.set_rng_state(ckpt.load(tmp_path)["rng"])
    b = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


# ----------------------------------------------------------------------------- 2. no code from a CIFAR folder

def test_a_crafted_cifar_batch_is_refused_naming_the_file(tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        if f == "data_batch_1":
            obj[b"extra"] = _Evil(marker)
        with open(d / f, "wb") as fh:
            pickle.dump(obj, fh)
    with open(d / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)
    sources.clear_cache()
    cfg = C.from_dict({"data": {"name": "cifar10", "root": str(tmp_path)}})
    with pytest.raises(sources.DatasetError, match="data_batch_1.*refused builtins.exec"):
        sources.load_split(cfg, "train")
    assert not marker.exists()
    # string labels: one line naming the file
    with open(d / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": ["cat", "dog"]}, fh)
    sources.clear_cache()
    with pytest.raises(sources.DatasetError, match="data_batch_1.*integer class"):
        sources.load_split(cfg, "train")


# ----------------------------------------------------------------------------- 3. corruption is caught

def test_flipped_bytes_are_caught_naming_the_file(tmp_path):
    ckpt.save(tmp_path, {"w": torch.arange(1000, dtype=torch.float32)})
    p = ckpt.checkpoint_dir(tmp_path) / ckpt.LAST
    raw = bytearray(p.read_bytes())
    for i in range(0, 64):
        raw[len(raw) // 2 + i] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match=r"last\.pt is corrupt.*SHA-256"):
        ckpt.load(p)


# ----------------------------------------------------------------------------- 4. fallback, no shared file

def test_last_and_epoch_files_never_share_a_file(tmp_path):
    for e in (1, 2):
        ckpt.save(tmp_path, {"position": {"epoch": e, "batch": 0}}, epoch_tag=e)
    d = ckpt.checkpoint_dir(tmp_path)
    assert os.stat(d / "last.pt").st_ino != os.stat(d / "epoch_0002.pt").st_ino
    assert os.stat(d / "last.pt").st_nlink == 1


@pytest.mark.parametrize("damage", ["truncate", "empty", "flip", "delete"])
def test_a_damaged_last_falls_back_to_the_newest_good_epoch_file(tmp_path, damage):
    for e in (1, 2):
        ckpt.save(tmp_path, {"position": {"epoch": e, "batch": 0}}, epoch_tag=e)
    last = ckpt.checkpoint_dir(tmp_path) / ckpt.LAST
    raw = last.read_bytes()
    if damage == "truncate":
        last.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    elif damage == "flip":
        last.write_bytes(raw[:-20] + bytes(b ^ 0x55 for b in raw[-20:]))
    else:
        last.unlink()
    state, path, problems = ckpt.load_newest(tmp_path)
    assert path.name == "epoch_0002.pt" and state["position"]["epoch"] == 2
    assert problems and "last.pt" in problems[0]


def test_resume_from_an_older_checkpoint_says_which_and_what_it_costs(tmp_path, capsys):
    d = _run(tmp_path)
    ref = _final([json.loads(l) for l in (d / "events.jsonl").read_text().splitlines()])
    last = ckpt.checkpoint_dir(d) / ckpt.LAST
    last.write_bytes(last.read_bytes()[:100])        # truncated: the run's end state is lost
    rc, evs, err = _main(capsys, "resume", str(d))
    assert rc == 0, err
    started = evs[0]
    assert started["event"] == "run_started" and started["resume"]["checkpoint"].endswith("epoch_0002.pt")
    assert started["resume"]["epochs_redone"] == 1 and "epoch_0002.pt" in err
    got = _final(evs)
    assert got["epoch"] == 2 and (got["test_acc"], got["train_loss"]) == (ref["test_acc"], ref["train_loss"])


# ----------------------------------------------------------------------------- 5. before the first checkpoint

def test_a_run_killed_before_its_first_checkpoint_restarts_from_its_config(tmp_path, capsys):
    cfg = _cfg(tmp_path, epochs=2)
    d = run_dir_mod.create(cfg)                       # config.yaml only, as after an early SIGKILL
    rc, evs, err = _main(capsys, "resume", str(d))
    assert rc == 0, err
    assert evs[0]["resumed"] is True and evs[0]["start_epoch"] == 0
    assert [e["epoch"] for e in evs if e["event"] == "epoch_end"] == [0, 1]
    assert evs[-1]["status"] == "completed"


# ----------------------------------------------------------------------------- 6. config vs checkpoint

def _edit_config(d: Path, **over) -> None:
    p = d / run_dir_mod.CONFIG_FILE
    data = yaml.safe_load(p.read_text())
    for k, v in over.items():
        C._set_dotted(data, k, v)
    p.write_text(yaml.safe_dump(data))


def test_a_changed_config_is_refused_unless_allowed(tmp_path, capsys):
    d = _run(tmp_path, epochs=2)
    _edit_config(d, batch_size=8, epochs=3)
    rc, evs, err = _main(capsys, "resume", str(d))
    assert rc == cli.EXIT_CONFIG and "batch_size" in err and "epochs" in err and "--allow-change" in err
    rc, evs, err = _main(capsys, "resume", str(d), "--allow-change", "epochs")
    assert rc == cli.EXIT_CONFIG and "batch_size" in err and "  epochs:" not in err
    _edit_config(d, batch_size=16)
    rc, evs, err = _main(capsys, "resume", str(d), "--allow-change", "epochs")
    assert rc == 0, err
    assert [e["epoch"] for e in evs if e["event"] == "epoch_end"] == [2]
    assert evs[0]["resume"]["changed"] == {"epochs": [2, 3]}


def test_a_deleted_config_resumes_from_the_checkpoints_config(tmp_path, capsys):
    d = _run(tmp_path, epochs=2)
    (d / run_dir_mod.CONFIG_FILE).unlink()
    ckpt.checkpoint_dir(d).joinpath(ckpt.LAST).unlink()   # resume from epoch_0001.pt
    rc, evs, err = _main(capsys, "resume", str(d))
    assert rc == 0, err
    assert evs[0]["config"]["batch_size"] == 16 and (d / run_dir_mod.CONFIG_FILE).is_file()
    assert [e["epoch"] for e in evs if e["event"] == "epoch_end"] == [1]


# ----------------------------------------------------------------------------- 7. one engine per folder

def test_a_locked_run_folder_is_refused_with_the_holders_pid(tmp_path, capsys):
    from engine.run.lock import RunLock
    d = run_dir_mod.create(_cfg(tmp_path, epochs=2))
    with RunLock(d):
        rc, evs, err = _main(capsys, "resume", str(d))
    assert rc == cli.EXIT_FAILED and f"pid {os.getpid()}" in err
    assert evs and evs[0]["event"] == "error" and f"pid {os.getpid()}" in evs[0]["message"]
    assert not (d / "events.jsonl").exists()          # the holder's stream is left alone
    assert not ckpt.checkpoint_dir(d).exists()


def test_temporary_checkpoint_files_have_unique_names(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(Path(src).name)
        return real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    ckpt.save(tmp_path, {"a": 1})
    ckpt.save(tmp_path, {"a": 2})
    assert len(seen) == 2 and seen[0] != seen[1]
    errors = []

    def writer(i):
        try:
            for _ in range(5):
                ckpt.save(tmp_path, {"i": i})
        except ckpt.CheckpointError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and ckpt.load(tmp_path)["i"] in (0, 1)
    assert not list(ckpt.checkpoint_dir(tmp_path).glob("*.tmp"))


# ----------------------------------------------------------------------------- 8. full disk at start

def _cfg_file(tmp_path, **over) -> Path:
    d = json.loads(json.dumps(TINY))
    d["run_dir"] = str(tmp_path / "runs")
    for k, v in over.items():
        C._set_dotted(d, k, v)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_a_full_disk_at_start_is_an_error_event_leaving_nothing(tmp_path, capsys, monkeypatch):
    real_fdopen = os.fdopen

    class _Full(io.StringIO):
        def write(self, s):
            raise OSError(errno.ENOSPC, "No space left on device")

    def full(fd, mode="r", *a, **k):
        if "w" in mode:
            os.close(fd)
            return _Full()
        return real_fdopen(fd, mode, *a, **k)

    monkeypatch.setattr(os, "fdopen", full)
    rc, evs, err = _main(capsys, "run", "--config", str(_cfg_file(tmp_path)))
    assert rc == cli.EXIT_FAILED
    assert evs and evs[-1]["event"] == "error" and "No space" in evs[-1]["message"]
    assert "Traceback" not in err
    assert list((tmp_path / "runs").iterdir()) == []          # no run folder, no 0-byte temp file


def test_too_little_free_space_is_refused_before_anything_is_made(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    rc, evs, err = _main(capsys, "run", "--config", str(_cfg_file(tmp_path)))
    assert rc == cli.EXIT_CONFIG and "free" in err and "checkpoint" in err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


# ----------------------------------------------------------------------------- 9. garbage on stdin

GARBAGE = {
    "deep_json": b'{"cmd":' + b"[" * 200000 + b"\n",
    "deep_object": b'{"a":' * 200000 + b"\n",
    "deep_array": b"[" * 200000 + b"\n",
    "long_line": b"x" * 3_000_000 + b"\n",
    "long_command": b'{"cmd": "' + b"y" * 100_000 + b'"}\n',
    "invalid_utf8": b"\xff\xfe\xfa stop \x80\n",
    "nul_bytes": b"\x00\x00{\x00}\n",
    "non_string_cmd": b'{"cmd": ["stop"]}\n{"cmd": {"x": 1}}\n{"cmd": 1e999}\n',
    "huge_number": b'{"cmd": 1' + b"0" * 5000 + b"}\n",
    "not_an_object": b'"stop"\n[1, 2]\nnull\n',
}


def _channel(data: bytes, stop_on_eof: bool = False) -> CommandChannel:
    ch = CommandChannel()
    ch.start_stdin(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"), stop_on_eof=stop_on_eof)
    ch._thread.join(timeout=120)
    return ch


def test_stop_still_works_after_each_kind_of_garbage_on_stdin():
    failed = []
    for kind, junk in sorted(GARBAGE.items()):
        ch = _channel(junk + b'{"cmd": "stop"}\n')
        if not (ch.should_stop and ch.stop_reason == "stdin"):
            failed.append(f"{kind}: stop")
        ch = _channel(junk, stop_on_eof=True)       # and --stop-on-eof after the same garbage
        if not (ch.should_stop and ch.stop_reason == "eof"):
            failed.append(f"{kind}: eof")
    assert not failed, failed


def test_stdin_lines_are_read_in_bounded_pieces():
    from engine.run.control import MAX_LINE, _lines, parse_command
    pieces = list(_lines(io.BytesIO(b"z" * 1_000_000 + b"\nstop\n")))
    assert pieces == [b"stop\n"]                      # the overlong line is dropped, never held whole
    assert parse_command("{" * 50 + "}" * 50) is None and parse_command(" " + "a" * (MAX_LINE + 1)) is None


def test_a_failed_last_write_leaves_no_stale_last(tmp_path, monkeypatch):
    """A full disk after the epoch file: last.pt (older) is removed so resume takes the newest."""
    ckpt.save(tmp_path, {"position": {"epoch": 1, "batch": 0}}, epoch_tag=1)
    real = ckpt.atomic_write

    def last_fails(data, path):
        if path.name == ckpt.LAST:
            raise ckpt.CheckpointError(f"could not write checkpoint {path}: [Errno 28] No space left on device")
        return real(data, path)

    monkeypatch.setattr(ckpt, "atomic_write", last_fails)
    with pytest.raises(ckpt.CheckpointError, match="No space"):
        ckpt.save(tmp_path, {"position": {"epoch": 2, "batch": 0}}, epoch_tag=2)
    state, path, _ = ckpt.load_newest(tmp_path)
    assert path.name == "epoch_0002.pt" and state["position"]["epoch"] == 2
