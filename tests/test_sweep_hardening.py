"""Sweep folders from elsewhere: a long or dotted sweep name still resumes its cells, a
crafted manifest cannot name a path outside the folder, two sweeps never share a folder."""
from __future__ import annotations

import pytest
import yaml

from engine import config as config_mod
from engine.run import folder
from engine.run.lock import RunLock, RunLockedError
from engine.sweep import cells as cells_mod
from engine.sweep import manifest, runner, spec, state
from engine.sweep.spec import SweepError
from tests.test_sweep import TINY


def _spec(name):
    return spec.parse({"name": name, "base": {"preset": "demo"}, "overrides": TINY,
                       "axes": {"optim.lr": [0.05, 0.1]}, "seeds": 1})


@pytest.mark.parametrize("name", ["x" * 120, ".hidden-sweep", "a sweep with spaces and a very long name " * 3])
def test_long_or_dotted_sweep_name_resumes_its_cell_folder(tmp_path, name):
    s = _spec(name)
    cells = cells_mod.expand(s)
    m = manifest.create(s, cells, tmp_path)
    for c in cells:
        assert folder.safe_name(c.name) == c.name and len(c.name) <= folder.NAME_MAX
        rd = folder.create(config_mod.from_dict(c.config), m.dir)   # what the engine does
        assert state.run_dirs(m.dir, c) == [rd]                    # so a resume finds it
    assert len({c.name for c in cells}) == len(cells)


@pytest.mark.parametrize("bad", ["../../escape", "/abs/path", ".hidden", "a/b", "x" * 200])
def test_crafted_manifest_cell_name_is_refused(tmp_path, bad):
    s = _spec("t")
    m = manifest.create(s, cells_mod.expand(s), tmp_path)
    data = yaml.safe_load((m.dir / manifest.MANIFEST).read_text())
    data["cells"][0]["name"] = bad
    (m.dir / manifest.MANIFEST).write_text(yaml.safe_dump(data))
    with pytest.raises(SweepError, match="not a plain file name"):
        manifest.read(m.dir)
    assert not (tmp_path.parent / "escape.log").exists()


def test_two_sweeps_on_one_folder_the_second_is_refused(tmp_path):
    s = _spec("t")
    m = manifest.create(s, cells_mod.expand(s), tmp_path)
    # the first sweep process holds the folder; the second is refused before any cell starts
    with RunLock(m.dir), pytest.raises(RunLockedError, match="in use"):
        runner.run(m, gpus="cpu")
    assert state.run_dirs(m.dir, m.cells[0]) == []


@pytest.mark.parametrize("special", ["results.jsonl", "logs", "sweep.yaml"])
def test_a_sweep_folder_whose_special_file_is_a_link_is_refused_naming_it(tmp_path, special):
    s = _spec("t")
    m = manifest.create(s, cells_mod.expand(s), tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir() if special == "logs" else victim.write_text("keep me\n")
    target = m.dir / special
    if target.is_dir():
        target.rmdir()
    elif target.exists():
        target.rename(tmp_path / "moved")
        if special == "sweep.yaml":                 # the manifest a link points at
            victim.write_text((tmp_path / "moved").read_text())
    target.symlink_to(victim)
    with pytest.raises(SweepError, match=rf"{special}.*symbolic link"):
        manifest.read(m.dir)


def test_results_are_never_appended_through_a_link(tmp_path):
    victim = tmp_path / "victim.jsonl"
    victim.write_text("")
    link = tmp_path / "results.jsonl"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        manifest.append_jsonl(link, {"cell": "x"})
    assert victim.read_text() == ""


def test_a_finished_sweep_ends_its_trackers_parent_run(tmp_path, monkeypatch):
    """The runner ends the MLflow parent run with the sweep: FINISHED when every cell is done
    (here all were done before it started: nothing is trained)."""
    from engine.tracking import groups
    from tests.test_sweep_report import fake_sweep
    ended = []
    monkeypatch.setattr(groups, "end_parent", lambda d, cfg, status: ended.append((d, status)) or True)
    m = manifest.read(fake_sweep(tmp_path))
    assert runner.run(m, gpus="none") == 0
    assert ended == [(m.dir, "FINISHED")]


def test_a_slurm_sweeps_fresh_cell_folder_carries_the_trackers_group(tmp_path):
    """Cells submitted to Slurm are grouped in the trackers as the local runner's are: the
    group goes into the config their fresh run folder holds."""
    from engine.sweep import cluster
    s = spec.parse({"name": "grp", "base": {"preset": "demo"}, "overrides": {**TINY, "trackers": {
        "tensorboard": {"enabled": True}}}, "axes": {"sparsity.target": [0.5]}, "seeds": 1})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    (st,) = state.states(m)
    rd = cluster._run_folder(m, st)
    assert config_mod.load(rd / "config.yaml").trackers.group == m.name
    plain = spec.parse({"name": "plain", "base": {"preset": "demo"}, "overrides": TINY,
                        "axes": {"sparsity.target": [0.5]}, "seeds": 1})
    m2 = manifest.create(plain, cells_mod.build(plain), tmp_path)
    rd2 = cluster._run_folder(m2, state.states(m2)[0])
    assert not config_mod.load(rd2 / "config.yaml").trackers.group      # no tracker on: no group
