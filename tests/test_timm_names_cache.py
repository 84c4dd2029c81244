"""The studio's timm model names (spfde_gui.system.model_tables.timm_names): listed in a
subprocess once per timm version, then read from the cache folder; a damaged cache is
listed again, and without timm nothing is listed or written."""
from __future__ import annotations

import json

import pytest

from spfde_gui.system import cancellable
from spfde_gui.system import model_tables as mt
from tests.test_cancellable import _alive, _sleeper


@pytest.fixture
def listing(tmp_path, monkeypatch):
    """Counts the subprocess listings; timm's version is whatever ``state['version']`` says."""
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(tmp_path / "cache"))
    state = {"version": "1.0.31", "calls": 0, "names": ["resnet18", "vit_tiny_patch16_224"]}

    def listed(check=None):
        state["calls"] += 1
        return list(state["names"])
    monkeypatch.setattr(mt, "timm_version", lambda: state["version"])
    monkeypatch.setattr(mt, "list_timm_names", listed)
    return state


def test_names_are_listed_once_per_timm_version(listing, tmp_path):
    assert mt.timm_names() == ["resnet18", "vit_tiny_patch16_224"] and listing["calls"] == 1
    assert mt.timm_names() == ["resnet18", "vit_tiny_patch16_224"] and listing["calls"] == 1
    assert json.loads((tmp_path / "cache" / "timm-models-1.0.31.json").read_text()) == listing["names"]
    listing["version"], listing["names"] = "1.1.0", ["resnet18", "new_net"]
    assert mt.timm_names() == ["resnet18", "new_net"] and listing["calls"] == 2


@pytest.mark.parametrize("content", ["not json", "{}", "[]", '["ok", 3]', '"resnet18"'])
def test_a_damaged_cache_is_listed_again_and_rewritten(listing, tmp_path, content):
    path = mt.names_cache("1.0.31")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    assert mt.timm_names() == listing["names"] and listing["calls"] == 1
    assert json.loads(path.read_text()) == listing["names"]


def test_an_odd_version_string_stays_inside_the_cache_folder(listing, tmp_path):
    listing["version"] = "../../1.0+local/x"
    mt.timm_names()
    written = [p for p in (tmp_path / "cache").iterdir()]
    assert len(written) == 1 and written[0].name == "timm-models-.._.._1.0+local_x.json"


def test_without_timm_nothing_is_listed_or_written(listing, tmp_path):
    listing["version"] = None
    assert mt.timm_names() == [] and listing["calls"] == 0
    assert not (tmp_path / "cache").exists()


def test_a_failed_listing_is_not_cached(listing, tmp_path):
    listing["names"] = []
    assert mt.timm_names() == [] and listing["calls"] == 1
    assert mt.timm_names() == [] and listing["calls"] == 2


def test_a_read_only_cache_folder_still_answers(listing, tmp_path, monkeypatch):
    monkeypatch.setenv("SPFDE_CACHE_DIR", "/proc/spfde-cannot-write-here")
    assert mt.timm_names() == listing["names"]


@pytest.mark.gui
def test_closing_the_studio_while_timm_names_are_listed_ends_the_listing(studio, qtbot, monkeypatch, tmp_path):
    # a worker thread still running when Qt destroys it aborts the process ("QThread:
    # Destroyed while thread ... is still running"): the listing must end with the window
    pid_file = tmp_path / "pid"
    monkeypatch.setattr(mt, "timm_version", lambda: "slow-listing")
    monkeypatch.setattr(mt, "list_timm_names", lambda check=None: cancellable.run(_sleeper(pid_file), 120, check).stdout)
    studio.form.set_field("model.name", "timm:resnet18")
    qtbot.waitUntil(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=30000)
    studio.close()
    assert studio.form._timm_names.wait(0)           # no worker left for Qt to destroy
    assert not _alive(int(pid_file.read_text()))
