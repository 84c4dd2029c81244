"""The studio's GPU side without a GPU: the selector (fed a fake NVML listing) writes the
distributed fields, the hardware view lists every GPU and engine process, the cost preview
prices one process of a distributed run."""
import pytest

pytest.importorskip("PySide6")

from engine import config  # noqa: E402
from engine.cost import projection as plan
from spfde_gui.system.gpu_info import Gpu, GpuProcess, list_gpus, per_gpu_batch  # noqa: E402

pytestmark = pytest.mark.gui

FAKE = ([Gpu(0, "H200", 141 * 2**30, 2**30, 5, [GpuProcess(12, 2**29, "python")]),
         Gpu(1, "H200", 141 * 2**30, 0, 0)], None)


def test_selector_sets_device_gpus_and_processes(qtbot):
    from PySide6.QtCore import Qt

    from spfde_gui.window.config_form import ConfigForm
    form = ConfigForm()
    qtbot.addWidget(form)
    sel = form.gpu_selector
    sel._lister = lambda: FAKE
    sel.refresh()
    assert sel.list.count() == 2 and "H200" in sel.list.item(0).text() and "1 process" in sel.list.item(0).text()
    sel.list.item(1).setCheckState(Qt.Checked)
    raw, _ = form.raw_dict()
    assert raw["device"] == "cuda" and raw["distributed"]["gpus"] == "1" and raw["distributed"]["nproc_per_node"] == 1
    sel.list.item(0).setCheckState(Qt.Checked)
    raw, _ = form.raw_dict()
    assert raw["distributed"]["gpus"] == "0,1" and raw["distributed"]["nproc_per_node"] == 2
    form.set_config(config.load_preset("demo"))           # a config without GPUs clears the checks
    assert sel.selected() == []


def test_selector_without_a_driver_says_so(qtbot):
    from spfde_gui.window.gpu_selector import GpuSelector
    sel = GpuSelector(lister=lambda: ([], "no NVIDIA GPU (NVML library not found)"))
    qtbot.addWidget(sel)
    assert "no NVIDIA GPU" in sel.status.text() and sel.list.count() == 0
    gpus, why = list_gpus()            # the real call never raises
    assert (gpus and why is None) or (not gpus and why.startswith("no NVIDIA GPU"))


def test_hardware_lines_and_per_gpu_cost():
    from spfde_gui.views.hardware import gpu_lines
    from spfde_gui.window.cost_preview import per_gpu
    text = gpu_lines([{"index": 0, "name": "H200", "used": 2**30, "total": 2**31, "util": 3,
                       "processes": {11: 2**28, 12: None}},
                      {"index": 1, "name": "H200", "used": 0, "total": 2**31, "util": None, "processes": {}}], True)
    assert "GPU 0 H200" in text and "pid 11 256.0 MiB" in text and "pid 12 ?" in text and "GPU 1" in text
    cfg = config.load_preset("demo", ["distributed.nproc_per_node=2", "device=cpu"])
    pg = per_gpu(cfg, plan.project)
    assert pg["processes"] == 2 and pg["batch_size"] == per_gpu_batch(cfg.batch_size, 2) == 32
    whole = plan.project(cfg)["memory"]["peak_bytes"]
    assert 0 < pg["peak_bytes"] < whole
    assert per_gpu(config.load_preset("demo"), plan.project) is None
