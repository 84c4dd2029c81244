"""The GPU selector: every NVIDIA GPU of this machine (name, memory, utilisation, processes,
from NVML via spfde_gui.system.gpu_info) with a check box each. Checking GPUs sets the run's
``device`` to cuda, ``distributed.gpus`` to the chosen indices and
``distributed.nproc_per_node`` to their number (one training process per GPU). Without a
driver it says "no NVIDIA GPU" and the run stays on the CPU."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from spfde_gui.system.gpu_info import list_gpus


class GpuSelector(QGroupBox):
    selection_changed = Signal(list)     # the chosen GPU indices (empty: none, the CPU or device=auto)

    def __init__(self, parent=None, lister=list_gpus):
        super().__init__("GPUs", parent)
        self._lister = lister
        lay = QVBoxLayout(self)
        self.status = QLabel("")
        self.status.setObjectName("gpu:status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.list = QListWidget()
        self.list.setObjectName("gpu:list")
        self.list.setMaximumHeight(110)
        self.list.itemChanged.connect(self._on_item)
        lay.addWidget(self.list)
        row = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the GPUs again (memory, utilisation and processes change)")
        self.refresh_button.clicked.connect(self.refresh)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        lay.addLayout(row)
        self.gpus = []
        self.refresh()

    def refresh(self) -> None:
        chosen = set(self.selected())
        self.gpus, why = self._lister()
        self.list.blockSignals(True)
        self.list.clear()
        for g in self.gpus:
            it = QListWidgetItem(g.label())
            it.setFlags(it.flags() | Qt.ItemIsUserCheckable)
            it.setCheckState(Qt.Checked if g.index in chosen else Qt.Unchecked)
            it.setData(Qt.UserRole, g.index)
            procs = ", ".join(f"pid {p.pid} {p.name}" for p in g.processes) or "no processes"
            it.setToolTip(procs)
            self.list.addItem(it)
        self.list.blockSignals(False)
        self.list.setVisible(bool(self.gpus))
        self.status.setText(why or "Check the GPUs to train on: one process each (torchrun with DDP when more than one).")

    def selected(self) -> list[int]:
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.Checked]

    def set_selected(self, indices: list[int] | None) -> None:
        """Show a configuration's choice without emitting ``selection_changed``."""
        want = set(indices or [])
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            it = self.list.item(i)
            it.setCheckState(Qt.Checked if it.data(Qt.UserRole) in want else Qt.Unchecked)
        self.list.blockSignals(False)

    def _on_item(self, _item) -> None:
        self.selection_changed.emit(self.selected())


def apply_selection(form, indices: list[int]) -> None:
    """Set the run's device and distributed fields in ``form`` (a ConfigForm) from the choice."""
    if indices:
        form.set_field("device", "cuda")
        form.set_field("distributed.gpus", ",".join(str(i) for i in indices))
        form.set_field("distributed.nproc_per_node", len(indices))
    else:
        form.set_field("distributed.gpus", None)
        form.set_field("distributed.nproc_per_node", 1)
