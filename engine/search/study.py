"""Drive an Optuna study: ask a batch of trials, refuse infeasible ones for free (planned,
never trained), write the feasible ones as sweep cells in the search folder, run them with
the sweep runner (engine.sweep.runner: one subprocess per cell, resumable), report their
per-epoch test accuracy to the pruner as the events arrive, and tell Optuna the results.

The search folder holds ``search.yaml`` (the file, with its fingerprint), ``study.db``
(SQLite, unless ``storage:`` names another Optuna storage) and the sweep folder layout
(``sweep.yaml``, ``configs/``, ``results.jsonl``, one run folder per cell). Rerunning the
search continues the study: finished trials are kept, interrupted ones resumed.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import optuna
import yaml
from optuna.trial import TrialState

from engine import config as config_mod
from engine.run.lock import LOCK_FILE, RunLock, RunLockedError
from engine.run.lock import _lock as try_lock
from engine.search import feasibility
from engine.search import report as report_mod
from engine.search.spec import SearchError, SearchSpec
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from engine.sweep import runner as runner_mod
from engine.sweep import state as state_mod
from engine.sweep.cells import Cell
from engine.tracking import groups

log = logging.getLogger("engine.search")
# Optuna's INFO lines ("A new study created ...") would interleave with the event stream.
optuna.logging.set_verbosity(optuna.logging.WARNING)
SPEC_FILE = "search.yaml"
STUDY_DB = "study.db"
# Infeasible points are free but not endless: give up after this many per requested trial.
MAX_INFEASIBLE_PER_TRIAL = 50
# Held for a few milliseconds around what several workers of one study folder must not
# interleave: asking a trial against the trial count, claiming an orphaned trial, adding
# cells to sweep.yaml. A shared filesystem's flock covers workers on several machines.
MUTEX_FILE = ".search.lock"
MUTEX_TIMEOUT_S = 120.0
# A killed search's cells stop by themselves (--stop-on-eof) with a checkpoint: wait for
# them to let go of their run folders before resuming them.
ORPHAN_WAIT_S = 300.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def mask_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


@contextlib.contextmanager
def folder_mutex(folder: Path, timeout: float = MUTEX_TIMEOUT_S) -> Iterator[None]:
    """An exclusive OS lock on ``<folder>/.search.lock``, waited for (it dies with its holder;
    flock, or msvcrt on Windows, as the run folder's lock)."""
    fd = os.open(folder / MUTEX_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                try_lock(fd)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SearchError([(str(folder), f"another search worker has held {MUTEX_FILE} for over "
                                                     f"{timeout:.0f} s")]) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)                    # closing drops the lock


# Drivers answer an unreachable host only after the OS's TCP timeout (minutes): cap it.
# SQLite: a worker waits up to a minute for another's write lock rather than failing with
# "database is locked" on a loaded machine.
_CONNECT_TIMEOUT = {"postgresql": {"connect_timeout": 10}, "mysql": {"connect_timeout": 10},
                    "sqlite": {"timeout": 60}}


def storage_for(spec: SearchSpec, folder: Path) -> Any:
    """The Optuna storage: SQLite in the folder, an RDB URL, or ``journal:PATH`` (a journal file)."""
    url = spec.storage or f"sqlite:///{(folder / STUDY_DB).resolve()}"
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage
            return JournalStorage(JournalFileBackend(url[len("journal:"):]))
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        scheme = url.split(":", 1)[0].split("+", 1)[0]
        if scheme in _CONNECT_TIMEOUT:
            kwargs["connect_args"] = _CONNECT_TIMEOUT[scheme]
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except Exception as exc:  # noqa: BLE001 (any driver error: the URL is what the user must fix)
        hint = (" (install the database driver for this URL, e.g. psycopg2 for postgresql, pymysql for "
                "mysql+pymysql)" if isinstance(exc, ImportError) else "")
        # the driver's message may repeat the URL with its password: mask that too
        msg = mask_url(str(exc).splitlines()[0][:200] if str(exc) else "")
        raise SearchError([("storage", f"cannot open the study storage {mask_url(url)}: "
                                       f"{type(exc).__name__}: {msg}{hint}")],
                          spec.source) from None


def folder_for(spec: SearchSpec, parent: str | Path | None = None, allow_change: bool = False) -> Path:
    """``<search_dir>/<name>/``; a folder made by a different search file is refused."""
    d = Path(parent if parent is not None else spec.search_dir).expanduser() / (
        _SAFE.sub("_", spec.name).strip("_") or "search")
    marker = d / SPEC_FILE
    if marker.is_file():
        old = yaml.safe_load(marker.read_text(encoding="utf-8")) or {}
        if old.get("fingerprint") != spec.fingerprint() and not allow_change:
            raise SearchError([(str(d), "this study folder was made by another search file (different base, "
                                        "space, budget or objective); use --allow-change to continue it anyway, "
                                        "or rename the search")], spec.source)
    d.mkdir(parents=True, exist_ok=True)
    (d / manifest_mod.CONFIGS).mkdir(exist_ok=True)
    with folder_mutex(d):               # a second worker starting beside this one
        marker.write_text(yaml.safe_dump({"fingerprint": spec.fingerprint(), "source": spec.source,
                                          "spec": spec.raw}, sort_keys=False), encoding="utf-8")
        if not (d / manifest_mod.MANIFEST).is_file():
            manifest_mod.Manifest(d, {"format": manifest_mod.FORMAT, "name": spec.name,
                                      "description": spec.description, "created": time.time(),
                                      "source": spec.source, "spec": spec.raw, "varied": list(spec.space),
                                      "seeds": spec.seeds, "search": True, "cells": []}).save()
    return d


def make_sampler(spec: SearchSpec, seed: int = 0) -> optuna.samplers.BaseSampler:
    # Each trial carries its budget constraint (Trial.set_constraint, "over_budget" <= 0 is
    # feasible), so TPE and NSGA-II learn where the budget line runs.
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4)


def make_pruner(spec: SearchSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def open_study(spec: SearchSpec, folder: Path, seed: int = 0) -> optuna.Study:
    directions: list[Any] = ["maximize", "minimize"] if spec.pareto else ["maximize"]
    # Two workers starting together would both create the tables and the study (found by
    # tests/test_search_resume.py: one failed with a storage error): one at a time.
    with folder_mutex(folder):
        return optuna.create_study(study_name=spec.name, storage=storage_for(spec, folder), load_if_exists=True,
                                   directions=directions,
                                   sampler=make_sampler(spec, seed), pruner=make_pruner(spec))


def suggest(trial: optuna.Trial, spec: SearchSpec) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for path, d in spec.space.items():
        if d.categorical:
            params[path] = trial.suggest_categorical(path, d.choices)  # type: ignore[arg-type]
        elif isinstance(d.low, int) and isinstance(d.high, int):
            params[path] = trial.suggest_int(path, d.low, d.high, log=d.log)
        else:
            params[path] = trial.suggest_float(path, float(d.low or 0), float(d.high or 0), log=d.log)
    return params


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str) -> bool:
    host, _, pid = worker.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True                      # another machine's worker: leave its trials alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _TrialRunner(runner_mod.SweepRunner):
    """The sweep runner, reporting each trial's first-seed learning curve to Optuna's pruner
    and stopping a pruned trial's cells with a checkpoint (resumable by hand)."""
    ends_parent = False          # one runner per batch: the study ends the parent run at its end

    def __init__(self, m: manifest_mod.Manifest, slots: list, out: IO[str] | None,
                 trials: dict[str, optuna.Trial], report_cells: set[str], on_progress: Any = None):
        super().__init__(m, slots=slots, out=out)
        self.trials, self.report_cells = trials, report_cells
        self.pruned: dict[int, dict] = {}
        self.on_progress = on_progress

    def _on_event(self, r: Any, ev: dict) -> None:
        super()._on_event(r, ev)
        trial = self.trials.get(r.cell.name)
        if trial is None or ev.get("event") != "epoch_end" or not isinstance(ev.get("test_acc"), (int, float)):
            return
        try:
            self._report(r, trial, ev)
        finally:
            if self.on_progress is not None:
                self.on_progress()

    def _report(self, r: Any, trial: optuna.Trial, ev: dict) -> None:
        if trial.number in self.pruned:
            self._send_stop(r)
            return
        if r.cell.name not in self.report_cells:
            return
        epoch = int(ev.get("epoch", 0))
        trial.report(float(ev["test_acc"]), epoch)
        if trial.should_prune():
            self.pruned[trial.number] = {"pruned_epoch": epoch, "pruned_reason":
                                         f"test_acc {ev['test_acc']:.4f} at epoch {epoch} below the "
                                         f"{type(self.trials[r.cell.name].study.pruner).__name__}'s threshold"}
            self.emit("trial_pruned", trial=trial.number, epoch=epoch, test_acc=ev["test_acc"])
            self._send_stop(r)           # the trial's other seeds stop at their next epoch


class Search:
    def __init__(self, spec: SearchSpec, folder: Path, out: IO[str] | None = None, workers: int | None = None,
                 seed: int = 0, feasibility_on: bool = True):
        self.spec, self.folder, self.out = spec, folder, out
        self.workers = workers or spec.workers
        self.feasibility_on = feasibility_on
        self.study = open_study(spec, folder, seed)
        self._runner: _TrialRunner | None = None
        self._stopped = False
        self._imp: dict[str, float] = {}
        self._snap_at = 0.0

    def snapshot(self, importances: bool = False, every_s: float = 0.0) -> None:
        """trials.json for the studio (at most every ``every_s`` seconds); importances are
        recomputed only when a trial ends (fANOVA is not free)."""
        if every_s and time.monotonic() - self._snap_at < every_s:
            return
        self._snap_at = time.monotonic()
        if importances:
            self._imp = report_mod.importances(self.study)
        try:
            report_mod.write_snapshot(self.spec, self.study, self.folder, self._imp)
        except OSError as exc:            # a full disk must not end the search: the study has it all
            log.warning("could not write %s: %s", report_mod.advice_mod.SNAPSHOT, exc)

    def request_stop(self) -> None:
        self._stopped = True
        if self._runner is not None:
            self._runner.request_stop()

    # ------------------------------------------------------------ trials
    def _orphans(self) -> list[optuna.Trial]:
        """Trials left RUNNING by a dead worker of this machine: claimed (under the folder's
        mutex, so two workers never take the same one) and resumed; one that died before its
        cells were written is failed, so it does not hold a place in the trial count."""
        out = []
        with folder_mutex(self.folder):
            for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                w = t.user_attrs.get("worker")
                if not w or w == _worker_id() or _alive(w):
                    continue
                trial = optuna.Trial(self.study, t._trial_id)
                if not t.user_attrs.get("cells"):
                    trial.set_user_attr("error", f"its worker {w} died before the trial started")
                    trial.set_user_attr("never_started", True)
                    self.study.tell(trial, state=TrialState.FAIL)
                    continue
                trial.set_user_attr("worker", _worker_id())
                out.append(trial)
        return out

    def _wait_released(self, cells: list[Cell]) -> None:
        """A killed search's cells are still writing their checkpoint for a moment: wait
        until no engine holds their run folders (resuming now would be refused)."""
        deadline = time.monotonic() + ORPHAN_WAIT_S
        for c in cells:
            for rd in state_mod.run_dirs(self.folder, c):
                if not (rd / LOCK_FILE).exists():
                    continue
                while True:
                    try:
                        RunLock(rd).acquire().release()
                        break
                    except RunLockedError:
                        if time.monotonic() > deadline:
                            return      # the runner records the refusal as the cell's failed attempt
                        time.sleep(0.2)

    def trained_count(self) -> int:
        """Trials that train (or trained): infeasible ones are free and do not count, nor do
        trials whose worker died before they started."""
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if not t.user_attrs.get("infeasible") and not t.user_attrs.get("never_started"))

    def _ask(self) -> tuple[optuna.Trial, list[Cell]] | None:
        """One trial: infeasible ones are told at once (never trained); None past the trial
        count. Under the folder's mutex: several workers never overshoot the trial count."""
        with folder_mutex(self.folder):
            return self._ask_locked()

    def _ask_locked(self) -> tuple[optuna.Trial, list[Cell]] | None:
        asks = 0
        while self.trained_count() < self.spec.trials:
            asks += 1
            if asks > MAX_INFEASIBLE_PER_TRIAL * self.spec.trials:
                self._emit("search_exhausted", reason=f"{asks - 1} points in a row were infeasible")
                return None
            trial = self.study.ask()
            trial.set_user_attr("worker", _worker_id())
            params = suggest(trial, self.spec)
            v = feasibility.judge(self.spec, params)
            if v.projected:
                for k in ("flops_spent", "flops_dense", "peak_memory_bytes"):
                    trial.set_user_attr(k, v.projected[k])
                trial.set_user_attr("flops_saved", v.projected["flops_saved"])
                over = feasibility.over_budget(self.spec, v.projected)
                trial.set_user_attr("over_budget", over)
                trial.set_constraint("over_budget", over)
            if not v.feasible and (self.feasibility_on or v.config is None):
                trial.set_user_attr("infeasible", v.reason)
                self.study.tell(trial, state=TrialState.PRUNED)
                self._emit("trial_infeasible", trial=trial.number, params=params, reason=v.reason)
                continue
            return trial, self._cells(trial, params, v)
        return None

    def _cells(self, trial: optuna.Trial, params: dict, v: feasibility.Verdict) -> list[Cell]:
        m = manifest_mod.read(self.folder)
        cells = []
        for seed in self.spec.seeds:
            name = f"{_SAFE.sub('_', self.spec.name).strip('_')}-t{trial.number:03d}-s{seed}"
            cfg = config_mod.from_dict(feasibility.point_config(self.spec, params, seed, name)).to_dict()
            cell = Cell(index=len(m.cells), name=name, setting=dict(params), seed=seed, config=cfg,
                        projected=dict(v.projected))
            config_mod.save(config_mod.from_dict(cfg), m.config_path(cell))
            m.cells.append(cell)
            cells.append(cell)
        m.save()
        trial.set_user_attr("cells", [c.name for c in cells])
        return cells

    def _emit(self, event: str, **fields: Any) -> None:
        from engine.run.events import dumps, make_event
        ev = make_event(event, **fields)
        manifest_mod.append_jsonl(self.folder / manifest_mod.EVENTS, ev)
        if self.out is not None:
            self.out.write(dumps(ev) + "\n")
            self.out.flush()

    def _enqueue_reference(self) -> None:
        """Once per study: queue the plain-MEST point at this budget (no freezing, no
        sieving, the least sparsity that fits) so the advice can say what SpFDE's techniques
        add; or record why the space holds none."""
        if not self.spec.reference:
            return
        with folder_mutex(self.folder):
            if "reference" in self.study.user_attrs:
                return
            params, why = feasibility.plain_mest_point(self.spec)
            if params is None:
                self.study.set_user_attr("reference", {"missing": why})
                self._emit("reference_missing", reason=why)
                return
            self.study.enqueue_trial(params, user_attrs={"reference": "plain MEST"})
            self.study.set_user_attr("reference", {"params": params})

    # ------------------------------------------------------------ the loop
    def run(self) -> int:
        self._enqueue_reference()
        pending = []
        for t in self._orphans():
            cells = self._trial_cells(t)
            self._wait_released(cells)
            self._emit("trial_resumed", trial=t.number, cells=[c.name for c in cells])
            pending.append((t, cells))
        while not self._stopped:
            while len(pending) < self.workers:
                got = self._ask()
                if got is None:
                    break
                pending.append(got)
            if not pending:
                break
            self.snapshot()
            self._run_batch(pending)
            self.snapshot(importances=True)
            pending = []
        self.snapshot(importances=True)
        m = manifest_mod.read(self.folder)
        if m.cells:        # the trackers' parent run ends with the search
            groups.end_parent(self.folder, m.cells[0].config, "KILLED" if self._stopped else "FINISHED")
        self._emit("search_finished", trials=len(self.study.trials), stopped=self._stopped)
        return 0

    def _trial_cells(self, trial: optuna.Trial) -> list[Cell]:
        m = manifest_mod.read(self.folder)
        names = set(self.study._storage.get_trial_user_attrs(trial._trial_id).get("cells", []))
        return [c for c in m.cells if c.name in names]

    def _run_batch(self, batch: list[tuple[optuna.Trial, list[Cell]]]) -> None:
        full = manifest_mod.read(self.folder)
        view = manifest_mod.Manifest(self.folder, dict(full.data))
        view.cells = [c for _, cells in batch for c in cells]     # only this batch's cells run
        by_cell = {c.name: t for t, cells in batch for c in cells}
        first = {cells[0].name for _, cells in batch if cells}
        slots: list[str | None] = [None] * self.workers
        gpus = runner_mod.detect_gpus("auto")
        if len(gpus) > 1:
            slots = list(gpus[: self.workers])
        self._runner = _TrialRunner(view, slots, self.out, by_cell, first,
                                    on_progress=lambda: self.snapshot(every_s=2.0))
        if self.spec.pareto:
            self._runner.report_cells = set()        # Optuna prunes single-objective studies only
        self._runner.run()
        lines = state_mod.results_by_cell(self.folder)
        for trial, cells in batch:
            self._tell(trial, cells, lines)

    def _tell(self, trial: optuna.Trial, cells: list[Cell], lines: dict[str, list[dict]]) -> None:
        assert self._runner is not None
        pruned = self._runner.pruned.get(trial.number)
        if pruned:
            for k, v in pruned.items():
                trial.set_user_attr(k, v)
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        last = [results_mod.latest_lines(lines.get(c.name, [])).get(c.name) for c in cells]
        if all(line and line.get("status") == "completed" for line in last):
            accs = [float(line["final_test_acc"]) for line in last if line]
            acc = sum(accs) / len(accs)
            trial.set_user_attr("test_acc_seeds", accs)
            trial.set_user_attr("flops_measured", float(last[0].get("flops_spent") or 0.0) if last[0] else 0.0)
            values = [acc, float(trial.user_attrs.get("flops_spent", 0.0))] if self.spec.pareto else [acc]
            self.study.tell(trial, values)
            return
        if self._stopped:
            return                                  # interrupted: left RUNNING, resumed on the next run
        errors = [str(line.get("error", "")) for line in last if line and line.get("status") == "failed"]
        trial.set_user_attr("error", "; ".join(e for e in errors if e) or "the trial's runs did not complete")
        self.study.tell(trial, state=TrialState.FAIL)
