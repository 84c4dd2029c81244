"""The run configuration form, built from engine.config.FIELDS.

Numbers are typed as text so any value can be entered and judged: each field shows its
own error (red border and a message under it) from the same validator the engine uses,
and ``config()`` is None while anything is invalid (the window blocks the launch).
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import config as cfgmod
from engine.data.sizes import KNOWN
from engine.run.folder import safe_name
from engine.sparsity.methods import METHOD_FIELDS, METHODS
from spfde_gui.system import model_tables
from spfde_gui.system.tasks import TaskRunner
from spfde_gui.window.gpu_selector import GpuSelector, apply_selection

GROUPS = (("model", "Model && data"), ("sparsity", "Sparsity && DST"), ("freeze", "Layer freezing"),
          ("sieve", "Data sieving"), ("analysis", "Analyses"), ("training", "Training"), ("device", "Device"),
          ("trackers", "Experiment trackers"))
ERROR_STYLE = "border: 1px solid #d0312d; border-radius: 3px; background: #fff5f5;"
# Fields only the synthetic dataset reads: with a real dataset they are disabled and show
# the dataset's own figures (engine.data.sizes.KNOWN) instead of the synthetic values.
SYNTHETIC_ONLY = {"data.train_size": 0, "data.test_size": 1, "data.num_classes": 2, "data.label_noise": None}


LABELS = {"model.name": "model", "data.name": "dataset", "data.root": "data folder", "name": "run name",
          "run_dir": "runs folder", "optim.lr": "learning rate", "optim.end_lr": "end learning rate",
          "checkpoint.every": "checkpoint every", "checkpoint.keep": "checkpoints kept"}


def _label(path: str) -> str:
    return LABELS.get(path, path.split(".")[-1].replace("_", " "))


EDITED = " (edited)"   # the preset box after a field was changed

def _mapping(text: str):
    """(value, error) of a mapping typed as flow YAML, braces optional: depth: 28, drop_rate: 0.1."""
    if not text:
        return {}, None
    try:
        v = yaml.safe_load(text if text.startswith("{") else "{" + text + "}")
    except yaml.YAMLError as exc:
        return text, f"expected a mapping such as {{depth: 28}}: {str(exc).splitlines()[0]}"
    return (v, None) if isinstance(v, dict) else (text, "expected a mapping such as {depth: 28}")


class FieldEditor(QWidget):
    """One field: its input widget and the error message under it."""

    changed = Signal()

    def __init__(self, spec: cfgmod.FieldSpec, parent=None):
        super().__init__(parent)
        self.spec = spec
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        if spec.kind in ("choice", "model"):
            w = QComboBox()
            w.addItems(list(spec.choices))
            if spec.kind == "model":
                # the built-in names, or any timm:NAME / py:MODULE:CALLABLE typed in (and
                # completed from timm's list once it is loaded: set_model_names)
                w.setEditable(True)
                w.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
                w.lineEdit().setPlaceholderText("resnet20, timm:NAME or py:MODULE:CALLABLE")
            w.currentTextChanged.connect(self.changed)
        elif spec.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(self.changed)
        else:
            w = QLineEdit()
            if spec.optional:
                w.setPlaceholderText("(default)" if spec.kind != "path" else "(none)")
            if spec.kind == "list":
                w.setPlaceholderText("comma-separated, e.g. stem, head")
            if spec.kind == "mapping":
                w.setPlaceholderText("e.g. {depth: 28, drop_rate: 0.1}")
            w.textChanged.connect(self.changed)
        w.setToolTip(spec.help)
        w.setObjectName("field:" + spec.path)
        self.input = w
        row.addWidget(w, 1)
        if spec.kind == "path":
            b = QToolButton()
            b.setText("…")
            b.setToolTip("Choose a folder")
            b.clicked.connect(self._browse)
            row.addWidget(b)
        lay.addLayout(row)
        self.error_label = QLabel()
        self.error_label.setObjectName("error:" + spec.path)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c0392b; font-size: 11px;")
        self.error_label.hide()
        lay.addWidget(self.error_label)
        self.error: str | None = None
        self._held = None          # (value) kept while the field does not apply (see hold)

    def hold(self, shown: str | None, why: str) -> None:
        """Disable the field and show ``shown`` in it; its own value is kept for the
        configuration (and comes back with ``release``)."""
        if self._held is None:
            self._held = self.value()
        self.input.setEnabled(False)
        if isinstance(self.input, QLineEdit):
            self.input.blockSignals(True)
            self.input.setText(shown or "")
            self.input.setPlaceholderText("n/a")
            self.input.blockSignals(False)
        self.input.setToolTip(f"{why}\n\n{self.spec.help}")

    def release(self) -> None:
        if self._held is None:
            return
        (v, _err), self._held = self._held, None
        self.input.setEnabled(True)
        self.input.blockSignals(True)
        self.set_value(v)
        self.input.blockSignals(False)
        if isinstance(self.input, QLineEdit) and self.spec.optional:
            self.input.setPlaceholderText("(default)")
        self.input.setToolTip(self.spec.help)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, self.spec.help, self.input.text() or str(Path.cwd()))
        if d:
            self.input.setText(d)

    # value <-> widget -------------------------------------------------------------
    def set_value(self, v) -> None:
        if self._held is not None:        # a field that does not apply: keep the value for later
            self._held = (v, None)
            return
        w, kind = self.input, self.spec.kind
        if kind in ("choice", "model"):
            if w.findText(str(v)) < 0:
                w.addItem(str(v))
            w.setCurrentText(str(v))
        elif kind == "mapping":
            w.setText(yaml.safe_dump(v, default_flow_style=True, width=10**6).strip() if v else "")
        elif kind == "bool":
            w.setChecked(bool(v))
        elif kind == "list":
            w.setText(", ".join(str(x) for x in (v or [])))
        elif v is None:
            w.setText("")
        elif kind == "float":
            w.setText(f"{v:g}" if isinstance(v, (int, float)) else str(v))
        else:
            w.setText(str(v))

    def value(self):
        """(value, local error): the typed value, or the reason it cannot be read."""
        if self._held is not None:
            return self._held
        w, kind = self.input, self.spec.kind
        if kind == "choice":
            return w.currentText(), None
        if kind == "model":
            return w.currentText().strip(), None
        if kind == "bool":
            return w.isChecked(), None
        text = w.text().strip()
        if kind == "mapping":
            return _mapping(text)
        if kind == "list":
            return [x.strip() for x in text.split(",") if x.strip()], None
        if not text:
            if self.spec.optional:
                return None, None
            if kind in ("str", "path"):
                return "", None
            return None, "is required"
        if kind == "int":
            try:
                return int(text), None
            except ValueError:
                return text, f"expected an integer, got {text!r}"
        if kind == "float":
            try:
                return float(text), None
            except ValueError:
                return text, f"expected a number, got {text!r}"
        return text, None

    def set_error(self, msg: str | None) -> None:
        self.error = msg
        self.input.setStyleSheet(ERROR_STYLE if msg else "")
        self.error_label.setText(msg or "")
        self.error_label.setVisible(bool(msg))


class ConfigForm(QWidget):
    """Presets, load/save and every field of the run configuration, grouped."""

    changed = Signal()                 # any value changed (the preview debounces)
    validity_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QLabel] = {}
        self._loading = False
        self._valid = True
        self._cfg: cfgmod.RunConfig | None = None
        self._errors: list[tuple[str, str]] = []
        self._suggestions: dict[str, object] = {}

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Preset"))
        self.preset_box = QComboBox()
        self.preset_box.setObjectName("preset")
        self.preset_box.addItem("(defaults)")
        for name in cfgmod.list_presets():
            self.preset_box.addItem(name, name)      # data: the name, the text may say "(edited)"
        self.preset_box.activated.connect(self._on_preset)
        bar.addWidget(self.preset_box, 1)
        self.load_btn = QPushButton("Load…")
        self.load_btn.clicked.connect(self._load_dialog)
        self.save_btn = QPushButton("Save…")
        self.save_btn.clicked.connect(self._save_dialog)
        bar.addWidget(self.load_btn)
        bar.addWidget(self.save_btn)
        outer.addLayout(bar)

        self.general_error = QLabel()
        self.general_error.setWordWrap(True)
        self.general_error.setStyleSheet("color: #c0392b;")
        self.general_error.hide()
        outer.addWidget(self.general_error)

        body = QWidget()
        blay = QVBoxLayout(body)
        blay.setContentsMargins(4, 4, 4, 4)
        by_group: dict[str, list] = {}
        for spec in cfgmod.FIELDS:
            by_group.setdefault(spec.group or "training", []).append(spec)
        titles = dict(GROUPS)
        order = [g for g, _ in GROUPS] + [g for g in by_group if g not in titles]
        for g in order:
            specs = by_group.get(g)
            if not specs:
                continue
            box = QGroupBox(titles.get(g, g.title()))
            form = QFormLayout(box)
            form.setLabelAlignment(Qt.AlignRight | Qt.AlignTop)
            form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for spec in specs:
                ed = FieldEditor(spec)
                ed.changed.connect(self._on_changed)
                self.editors[spec.path] = ed
                lab = QLabel(_label(spec.path))
                lab.setToolTip(f"{spec.path}: {spec.help}")
                self.labels[spec.path] = lab
                form.addRow(lab, ed)
            blay.addWidget(box)
        self.gpu_selector = GpuSelector()
        self.gpu_selector.selection_changed.connect(lambda ids: apply_selection(self, ids))
        blay.addWidget(self.gpu_selector)
        blay.addStretch(1)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        # timm's names complete the model field once the user starts a timm: name: listed by
        # a subprocess (timm imports torch), once per session, in the background
        self._timm_names: TaskRunner | None = None
        self.editors["model.name"].input.currentTextChanged.connect(self._offer_timm_names)
        self.set_config(cfgmod.RunConfig().to_dict())

    def _offer_timm_names(self, text: str) -> None:
        if self._timm_names is not None or not text.startswith("timm"):
            return
        self._timm_names = TaskRunner(self, "timm-names")
        self._timm_names.done.connect(self._set_model_names)
        self._timm_names.start(lambda state: model_tables.timm_names(state.check))

    def _set_model_names(self, names: list[str]) -> None:
        combo = self.editors["model.name"].input
        completer = QCompleter([*cfgmod.MODELS, *(f"timm:{n}" for n in names)], combo)
        completer.setCaseSensitivity(Qt.CaseInsensitive)
        completer.setFilterMode(Qt.MatchContains)
        completer.setMaxVisibleItems(12)
        combo.setCompleter(completer)
        self.timm_name_count = len(names)   # for the tests

    def shutdown(self) -> None:
        if self._timm_names is not None:
            self._timm_names.shutdown()

    # ------------------------------------------------------------------ values
    def set_config(self, d: dict | cfgmod.RunConfig) -> None:
        """Fill the form (missing fields take their defaults); validates once at the end."""
        if isinstance(d, cfgmod.RunConfig):
            d = d.to_dict()
        base = cfgmod.RunConfig().to_dict()
        merged = cfgmod.apply_overrides(base, [])
        _deep_update(merged, d or {})
        self._loading = True
        try:
            for path, ed in self.editors.items():
                ed.set_value(_get(merged, path))
        finally:
            self._loading = False
        gpus = _get(merged, "distributed.gpus")
        if hasattr(self, "gpu_selector"):
            ids = [int(x) for x in str(gpus).split(",") if x.strip().isdigit()] if gpus is not None else []
            self.gpu_selector.set_selected(ids)
        self._on_changed()

    def raw_dict(self) -> tuple[dict, dict[str, str]]:
        """The nested dict the form holds and the fields it could not read."""
        d: dict = {}
        local: dict[str, str] = {}
        for path, ed in self.editors.items():
            v, err = ed.value()
            if err:
                local[path] = err
            _set(d, path, v)
        return d, local

    def validate(self) -> list[tuple[str, str]]:
        """Validate now, show every error at its field; returns (field, message) pairs."""
        d, local = self.raw_dict()
        errors = list(local.items())
        cfg = None
        suggestions: dict[str, object] = {}
        try:
            cfg = cfgmod.from_dict(d)
        except cfgmod.ConfigError as exc:
            errors += [(f, m) for f, m in exc.errors if f not in local]
            suggestions = {f: v for f, v in exc.suggestions.items() if f not in local}
        self._cfg = cfg if not errors else None
        self._errors = errors
        self._suggestions = suggestions
        by_field: dict[str, list[str]] = {}
        general = []
        for f, m in errors:
            if f in self.editors:
                by_field.setdefault(f, []).append(m)
            else:
                general.append(f"{f}: {m}")
        for path, ed in self.editors.items():
            msgs = by_field.get(path)
            ed.set_error("; ".join(msgs) if msgs else None)
        self.general_error.setText("\n".join(general))
        self.general_error.setVisible(bool(general))
        valid = not errors
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
        return errors

    def show_plan_errors(self, errors: list[tuple[str, str]]) -> None:
        """The planner's errors (an unreachable target, a missing dataset folder) at their
        fields, beside the fields' own errors, which stay first."""
        own = {f for f, _ in self._errors}
        by_field: dict[str, list[str]] = {}
        for f, m in errors:
            if f in self.editors and f not in own:
                by_field.setdefault(f, []).append(m)
        for path, ed in self.editors.items():
            if path not in own:
                msgs = by_field.get(path)
                ed.set_error("; ".join(msgs) if msgs else None)

    def focus_first_error(self) -> str | None:
        """Scroll to the first field in error and focus it; its dotted name, or None."""
        for path, ed in self.editors.items():
            if ed.error:
                self.scroll.ensureWidgetVisible(ed)
                ed.input.setFocus()
                return path
        return None

    def config(self) -> cfgmod.RunConfig | None:
        """The validated configuration, or None while a field is invalid."""
        return self._cfg

    def errors(self) -> list[tuple[str, str]]:
        return list(self._errors)

    def suggestions(self) -> dict[str, object]:
        """field -> the value that settles its error (engine.config.schema.fixes), while invalid."""
        return dict(self._suggestions)

    def is_valid(self) -> bool:
        return self._valid

    def set_field(self, path: str, value) -> None:
        self.editors[path].set_value(value)

    def _sync_method_fields(self) -> None:
        """Show only the fields of the chosen sparse-training method; a hidden field goes back
        to its default, so a value set for another method never blocks the launch."""
        ed = self.editors.get("sparsity.algorithm")
        method = METHODS.get(ed.value()[0]) if ed is not None else None
        if method is None:
            return
        defaults = cfgmod.RunConfig().to_dict()["sparsity"]
        shown = {f"sparsity.{f}" for f in method.fields}
        if method.distribution is not None:
            shown.add("sparsity.distribution")
        self._loading = True
        try:
            for path in [f"sparsity.{f}" for f in METHOD_FIELDS] + ["sparsity.distribution"]:
                if path not in self.editors:
                    continue
                visible = path in shown
                if not visible and self.editors[path].value()[0] != defaults[path.split(".", 1)[1]]:
                    self.editors[path].set_value(defaults[path.split(".", 1)[1]])
                self.editors[path].setVisible(visible)
                self.labels[path].setVisible(visible)
        finally:
            self._loading = False

    def _on_changed(self) -> None:
        if self._loading:
            return
        self._sync_method_fields()
        self._apply_dataset_rules()
        self.validate()
        self._mark_preset_edited()
        self.changed.emit()

    def _apply_dataset_rules(self) -> None:
        """Synthetic-only fields are disabled for a real dataset and show its sizes."""
        name_ed = self.editors.get("data.name")
        if name_ed is None:
            return
        name = name_ed.value()[0]
        for path, idx in SYNTHETIC_ONLY.items():
            ed = self.editors.get(path)
            if ed is None:
                continue
            if name == "synthetic":
                ed.release()
                continue
            if idx is None:
                shown = "n/a"
            elif name in KNOWN:
                shown = f"{KNOWN[name][idx]:,}".replace(",", " ")
            else:
                shown = "counted from data.root"
            ed.hold(shown, f"Only the synthetic dataset reads {path}: {name} has its own "
                           f"({'sizes from the folder' if name not in KNOWN else 'fixed sizes'}).")

    # ------------------------------------------------------------------ presets & files
    def load_preset(self, name: str) -> None:
        d = cfgmod.read_file(cfgmod.preset_path(name))
        self.set_config(d)
        self._unmark_presets()
        i = self.preset_box.findData(name)
        if i >= 0:
            self.preset_box.setCurrentIndex(i)

    def _unmark_presets(self) -> None:
        for i in range(1, self.preset_box.count()):
            self.preset_box.setItemText(i, str(self.preset_box.itemData(i)))

    def _mark_preset_edited(self) -> None:
        """The box says "demo (edited)" once a field differs from what the preset loaded."""
        i = self.preset_box.currentIndex()
        if i > 0 and not self.preset_box.itemText(i).endswith(EDITED):
            self.preset_box.setItemText(i, f"{self.preset_box.itemData(i)}{EDITED}")

    def load_file(self, path: str | Path) -> None:
        self.set_config(cfgmod.read_file(path))

    def _on_preset(self, index: int) -> None:
        name = str(self.preset_box.itemData(index) or "")
        try:
            if index == 0:
                self.set_config(cfgmod.RunConfig().to_dict())
            else:
                self.load_preset(name)
        except cfgmod.ConfigError as exc:
            QMessageBox.warning(self, "Preset", str(exc))

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load configuration", str(cfgmod.PRESET_DIR),
                                              "Configurations (*.yaml *.yml *.json)")
        if path:
            try:
                self.load_file(path)
            except cfgmod.ConfigError as exc:
                QMessageBox.warning(self, "Load configuration", str(exc))

    def _save_dialog(self) -> None:
        cfg = self.config()
        if cfg is None:
            QMessageBox.warning(self, "Save configuration", "Fix the fields marked in red first.")
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save configuration", f"{safe_name(cfg.name)}.yaml",
                                              "YAML (*.yaml);;JSON (*.json)")
        if path:
            cfgmod.save(cfg, path)


def _get(d: dict, path: str):
    cur = d
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _set(d: dict, path: str, v) -> None:
    parts = path.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = v


def _deep_update(base: dict, new: dict) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
