"""Symlinked-folder suite: every special file of a run folder as a link is refused, named,
and the file it points at is left untouched."""
from __future__ import annotations

import os

import pytest

from engine.run.folder import LinkedFileError, open_nofollow, refuse_links
from engine.run.lock import RunLock
from engine.run.telemetry import _open_append

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="POSIX links")


def _victim(tmp_path, name="victim.txt"):
    v = tmp_path / name
    v.write_text("precious\n")
    return v


@pytest.mark.parametrize("special", [".lock", "events.jsonl", "config.yaml", "checkpoints", "stderr.log"])
def test_lock_refuses_a_folder_whose_special_file_is_a_link(tmp_path, special):
    run = tmp_path / "run"
    run.mkdir()
    victim = _victim(tmp_path)
    (run / special).symlink_to(victim)
    with pytest.raises(LinkedFileError, match=special.replace(".", r"\.")):
        RunLock(run).acquire()
    assert victim.read_text() == "precious\n"


def test_refuse_links_names_every_link(tmp_path):
    victim = _victim(tmp_path)
    (tmp_path / ".lock").symlink_to(victim)
    (tmp_path / "events.jsonl").symlink_to(victim)
    with pytest.raises(LinkedFileError, match=r"\.lock, events\.jsonl are symbolic links"):
        refuse_links(tmp_path)


def test_events_writer_never_appends_through_a_link(tmp_path):
    victim = _victim(tmp_path)
    (tmp_path / "events.jsonl").symlink_to(victim)
    with pytest.raises(LinkedFileError):
        _open_append(tmp_path / "events.jsonl")
    assert victim.read_text() == "precious\n"


def test_dangling_link_is_refused_not_created(tmp_path):
    (tmp_path / ".lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LinkedFileError):
        open_nofollow(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    assert not (tmp_path / "elsewhere").exists()


def test_checkpoints_folder_link_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.training import checkpoint as ckpt
    target = tmp_path / "elsewhere"
    target.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").symlink_to(target)
    with pytest.raises(ckpt.CheckpointError, match="symbolic link"):
        ckpt.save(run, {"w": torch.zeros(1)})
    assert list(target.iterdir()) == []


def test_a_plain_folder_still_locks(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.path.is_file() and not lock.path.is_symlink()
