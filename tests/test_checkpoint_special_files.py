"""/dev/zero, a FIFO and a link as checkpoints: each is a CheckpointError at once (resume
falls back to the next candidate), never a MemoryError or a hang."""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
from engine.training import checkpoint as ckpt  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX special files")


def _run_with_last(tmp_path):
    run = tmp_path / "run"
    ckpt.save(run, {"w": torch.ones(2)})
    return run, ckpt.checkpoint_dir(run) / ckpt.LAST


@pytest.mark.parametrize("kind", ["dev_zero_link", "fifo", "link", "folder"])
def test_special_last_pt_is_a_checkpoint_error(tmp_path, kind):
    run, last = _run_with_last(tmp_path)
    good = last.read_bytes()
    last.unlink()
    if kind == "dev_zero_link":
        last.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(last)
    elif kind == "link":
        (tmp_path / "real.pt").write_bytes(good)
        last.symlink_to(tmp_path / "real.pt")
    else:
        last.mkdir()
    with pytest.raises(ckpt.CheckpointError, match="symbolic link|not a regular file|cannot be read"):
        ckpt.read_verified(last)


def test_header_claiming_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    run, last = _run_with_last(tmp_path)
    header, payload = last.read_bytes().split(b"\n", 1)
    parts = header.split()
    parts[3] = b"%d" % (10**15)
    last.write_bytes(b" ".join(parts) + b"\n" + payload)
    with pytest.raises(ckpt.CheckpointError, match="the header says 1000000000000000"):
        ckpt.read_verified(last)


def test_a_good_checkpoint_still_reads(tmp_path):
    _, last = _run_with_last(tmp_path)
    assert torch.equal(ckpt.read_verified(last)["w"], torch.ones(2))
