"""One run as the GUI and the report see it: its event stream folded into numpy columns.

Pure Python + numpy (no Qt, no torch), so the headless report and the tests use it as is.
Every view is a function of a RunModel; a live run, a past run and a crashed run are all
built the same way, by ingesting events in order (``load`` replays ``events.jsonl``).

Per-epoch metrics live in one float64 array (columns x capacity) whose capacity doubles as
it fills, so ingesting is O(1) amortised and ``column(name)`` is a view without copying.
``version`` bumps on every ingest: views redraw only when it changed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.config import flatten
from engine.run.events import EVENTS_FILE, RUN_STATUSES  # noqa: F401 - the run folder's event log (one definition)
from spfde_gui.model.event_guard import check as check_event

# Per-epoch columns (epoch_end fields, FLOPs ledger and memory flattened); NaN where absent.
COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time",
           "samples", "samples_total", "flops_spent", "flops_dense", "saved_sparsity",
           "saved_freeze", "saved_sieve", "density", "active_samples", "memory_peak",
           "memory_rss", "time", "flops_overhead")
_COL = {name: i for i, name in enumerate(COLUMNS)}
_SIMPLE = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time",
           "samples", "samples_total")
_NAN = float("nan")
# The engine's final statuses plus the studio's own (see spfde_gui.palette.STUDIO_STATUSES).
STATUSES = ("new", "starting", "running", *RUN_STATUSES, "killed", "crashed", "refused")
_PROGRESS_PREFIX = b'{"event":"progress"'   # how engine.run.events.dumps starts a progress line


def _num(v) -> float:
    # bools and strings are not metrics; null (NaN on the wire) stays NaN
    if v is None or isinstance(v, bool):
        return _NAN
    try:
        return float(v)
    except (TypeError, ValueError):
        return _NAN


class RunModel:
    """Everything the GUI shows about one run, rebuilt from its events."""

    def __init__(self, run_dir=None):
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self.config: dict | None = None
        self.run_started: dict | None = None
        self.finished: dict | None = None
        self.error: dict | None = None           # the fatal error that ended the run
        self.warnings: list[dict] = []           # non-fatal error events (run went on)
        self.freeze_plan: dict | None = None
        self.projected: dict | None = None
        self.progress: dict | None = None        # latest in-epoch progress event
        self.sessions: list[dict] = []           # every run_started (the first start, then resumes)
        self.starting = False                    # the studio launched an engine that has not spoken yet
        self.start_phase = ""                    # what that engine is doing meanwhile (from its log)
        self.killed = False                      # the user killed the engine on purpose
        self.last_event_time: float | None = None
        self.freeze_events: list[dict] = []
        self.unfreeze_events: list[dict] = []
        self.sieve_updates: list[dict] = []
        self.mask_updates: list[dict] = []
        self.checkpoints: list[dict] = []
        self.thread_events: list[dict] = []      # adaptive CPU thread changes (threads: auto)
        self.requeue_events: list[dict] = []     # Slurm restarted the job and it resumed (docs/slurm.md)
        self.analysis_events: list[dict] = []    # Section 3 analyses (spfde_gui.model.analysis_data reads them)
        self.block_names: list[str] = []
        self.n_events = 0
        self.n_skipped = 0                       # torn or undecodable lines seen by load/poll
        self.version = 0
        self._block_index: dict[str, int] = {}
        self._alive: bool | None = None          # None: nobody told us (live ingest)
        self._n = 0
        self._data = np.full((len(COLUMNS), 64), np.nan)
        self._frozen = np.zeros((64, 0), dtype=np.uint8)   # epochs x blocks, 1 = frozen
        self._file_offset = 0                   # bytes of events.jsonl consumed by load/poll
        self._handlers = {
            "epoch_end": self._on_epoch_end, "run_started": self._on_run_started,
            "progress": self._on_progress, "run_finished": self._on_run_finished,
            "error": self._on_error, "freeze": self.freeze_events.append,
            "unfreeze": self.unfreeze_events.append, "sieve_update": self.sieve_updates.append,
            "mask_update": self.mask_updates.append, "checkpoint": self.checkpoints.append,
            "analysis": self.analysis_events.append, "threads": self.thread_events.append,
            "requeued": self.requeue_events.append,
        }

    def threads_text(self) -> str:
        """The adaptive CPU thread count for the header and the report ("" when it never
        changed): the count now, and how many changes led there."""
        if not self.thread_events:
            return ""
        last = self.thread_events[-1]
        n = len(self.thread_events)
        return (f"{last.get('threads')} CPU threads (adapted {n}x, last at epoch {int(last.get('epoch', 0)) + 1} "
                f"batch {last.get('batch')}: {last.get('previous_images_per_s', '?')} -> {last.get('images_per_s')} images/s)")

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, run_dir) -> RunModel:
        """Replay ``<run_dir>/events.jsonl``. No live process is assumed: a run whose events
        end without ``run_finished`` reads as crashed until ``set_process_state(True)``."""
        model = cls(run_dir)
        model._alive = False
        model.poll_file()
        return model

    def _read_new(self, path: Path) -> bytes:
        """The bytes after the last offset; empty when the file is missing, unreadable, or
        not a regular file (a FIFO or device would hang or never end a read)."""
        if not path.is_file():
            return b""
        try:
            with open(path, "rb") as fh:
                fh.seek(self._file_offset)
                return fh.read()
        except OSError:
            return b""

    def poll_file(self) -> int:
        """Ingest complete lines appended to events.jsonl since the last call (tailing a run
        written by another process). A torn last line is left for the next call.
        Returns the number of events ingested."""
        if self.run_dir is None:
            return 0
        data = self._read_new(self.run_dir / EVENTS_FILE)
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        self._file_offset += end + 1
        before = self.n_events
        loads = json.loads
        evs = []
        # Only the latest progress event is kept by the model, so a replay parses just the
        # last one (they are most of a long run's lines); run_started/run_finished reset it.
        skipped_progress = 0
        last_progress = None
        for raw in data[:end].split(b"\n"):
            if raw.startswith(_PROGRESS_PREFIX):
                skipped_progress += 1
                last_progress = raw
                continue
            if not raw.strip():
                continue
            if last_progress is not None and (raw.startswith(b'{"event":"run_')):
                last_progress = None
            try:
                ev = loads(raw)
            except (ValueError, RecursionError):   # deep nesting is not an event either
                self.n_skipped += 1
                continue
            if isinstance(ev, dict):
                evs.append(ev)
            else:
                self.n_skipped += 1
        if last_progress is not None:
            try:
                evs.append(loads(last_progress))
                skipped_progress -= 1
            except (ValueError, RecursionError):
                self.n_skipped += 1
        self.ingest_many(evs)
        self.n_events += skipped_progress
        # An unterminated last line is complete if it parses and the writer is gone; the
        # next poll would otherwise never see it. Keep it pending only when it is torn.
        tail = data[end + 1:]
        if tail.strip() and self._alive is False:
            try:
                ev = loads(tail)
            except (ValueError, RecursionError):
                ev = None
            if isinstance(ev, dict):
                self._file_offset += len(tail)
                self.ingest(ev)
        return self.n_events - before

    # ---------------------------------------------------------------- ingesting
    def ingest(self, ev: dict) -> None:
        if check_event(ev) is not None:    # malformed: skipped and counted, never a crash
            self.n_skipped += 1
            return
        handler = self._handlers.get(ev.get("event"))
        if handler is not None:
            handler(ev)
        t = ev.get("time")
        if isinstance(t, (int, float)):
            self.last_event_time = t
        self.n_events += 1
        self.version += 1

    def ingest_many(self, evs: Iterable[dict]) -> None:
        handlers = self._handlers
        n = 0
        last_t = None
        for ev in evs:
            if check_event(ev) is not None:
                self.n_skipped += 1
                continue
            handler = handlers.get(ev.get("event"))
            if handler is not None:
                handler(ev)
            last_t = ev.get("time", last_t)
            n += 1
        if n:
            if isinstance(last_t, (int, float)):
                self.last_event_time = last_t
            self.n_events += n
            self.version += 1

    def set_process_state(self, alive: bool) -> None:
        """The controller (or the runs scanner) says whether the engine process lives."""
        if self._alive != alive:
            self._alive = alive
            self.version += 1

    def begin_session(self, resume: bool) -> None:
        """The studio is starting an engine for this run (a launch or a resume): until its
        run_started arrives the run is *starting*, whatever its previous session ended as."""
        self.starting = True
        self.start_phase = "loading Python and PyTorch"
        self.killed = False
        if resume:
            self.finished = None
            self.error = None
        self.version += 1

    def mark_killed(self) -> None:
        """The engine was killed at the user's request: *killed*, not crashed."""
        self.killed = True
        self.starting = False
        self.version += 1

    def _on_run_started(self, ev: dict) -> None:
        self.run_started = ev
        self.sessions.append(ev)
        self.starting = False
        self.config = ev.get("config") if isinstance(ev.get("config"), dict) else self.config
        self.freeze_plan = ev.get("freeze_plan")
        self.projected = ev.get("projected")
        self.finished = None
        self.error = None
        self.progress = None
        model = ev.get("model") or {}
        names = [b.get("name", str(i)) for i, b in enumerate(model.get("blocks") or [])
                 if isinstance(b, dict)]
        if names and names != self.block_names[:len(names)]:
            self._set_blocks(names)
        if ev.get("resumed"):
            # Events the killed/stopped run wrote after its last checkpoint are superseded.
            start = _num(ev.get("start_epoch"))
            if start == start:
                # Resumed mid-epoch (start_batch > 0), the engine does not re-emit the
                # start-of-epoch updates (freeze, sieve, mask) of the start epoch: keep them.
                mid_epoch = _num(ev.get("start_batch")) > 0
                self._truncate_from_epoch(start, keep_updates_of_epoch=mid_epoch)

    def resume_points(self) -> list[float]:
        """Where the run was stopped or killed and resumed, as positions on the epoch axis
        the views draw (epochs counted from 1): between the last epoch kept and the next."""
        out = []
        for ev in self.sessions[1:]:
            start = _num(ev.get("start_epoch"))
            if ev.get("resumed") and start == start and start >= 0:
                out.append(start + 0.5)
        return out

    def _set_blocks(self, names: list[str]) -> None:
        self.block_names = list(names)
        self._block_index = {n: i for i, n in enumerate(names)}
        if self._frozen.shape[1] < len(names):
            grown = np.zeros((self._frozen.shape[0], len(names)), dtype=np.uint8)
            grown[:, :self._frozen.shape[1]] = self._frozen
            self._frozen = grown

    def _truncate_from_epoch(self, epoch: float, keep_updates_of_epoch: bool = False) -> None:
        """Drop the epoch rows at ``epoch`` and later, and the update events from ``epoch``
        on (after ``epoch`` only, when ``keep_updates_of_epoch``)."""
        n = self._n
        if n and self._data[0, n - 1] >= epoch:
            keep = int(np.searchsorted(self._data[0, :n], epoch, side="left"))
            self._data[:, keep:n] = np.nan
            self._frozen[keep:n] = 0
            self._n = keep
        first_dropped = epoch + 1 if keep_updates_of_epoch else epoch
        for lst in (self.freeze_events, self.unfreeze_events, self.sieve_updates, self.mask_updates):
            lst[:] = [e for e in lst if not _num(e.get("epoch")) >= first_dropped]
        # an analysis event closes its epoch, like epoch_end: dropped with the epoch's row
        self.analysis_events[:] = [e for e in self.analysis_events if not _num(e.get("epoch")) >= epoch]

    def _on_epoch_end(self, ev: dict) -> None:
        epoch = _num(ev.get("epoch"))
        n = self._n
        if n and epoch == epoch and epoch <= self._data[0, n - 1]:
            # A repeated epoch (a restart without a resume marker) supersedes what followed.
            self._truncate_from_epoch(epoch)
            n = self._n
        if n == self._data.shape[1]:
            self._grow()
        row = [ev.get(k) for k in _SIMPLE]
        fl = ev.get("flops") or {}
        saved = fl.get("saved") or {}
        mem = ev.get("memory") or {}
        row += [fl.get("spent"), fl.get("dense"), saved.get("sparsity"), saved.get("freeze"),
                saved.get("sieve"), ev.get("density"), ev.get("active_samples"),
                mem.get("peak_bytes"), mem.get("rss_bytes"), ev.get("time"), _overhead(fl)]
        try:
            self._data[:, n] = row            # numpy reads None as NaN
        except (TypeError, ValueError):       # a stray string or dict: convert one by one
            self._data[:, n] = [_num(v) for v in row]
        frozen = ev.get("frozen_blocks")
        if frozen:
            self._mark_frozen(n, frozen)
        self._n = n + 1

    def _mark_frozen(self, row: int, frozen: list) -> None:
        idx = []
        for b in frozen:
            if isinstance(b, int) and not isinstance(b, bool):
                i = b
            else:
                i = self._block_index.get(str(b))
                if i is None:                      # a block the run_started did not list
                    i = len(self.block_names)
                    self._set_blocks(self.block_names + [str(b)])
            if i >= self._frozen.shape[1]:
                self._set_blocks(self.block_names + [str(k) for k in range(len(self.block_names), i + 1)])
            idx.append(i)
        self._frozen[row, idx] = 1

    def _grow(self) -> None:
        cap = self._data.shape[1]
        data = np.full((len(COLUMNS), cap * 2), np.nan)
        data[:, :cap] = self._data
        self._data = data
        frozen = np.zeros((cap * 2, self._frozen.shape[1]), dtype=np.uint8)
        frozen[:self._frozen.shape[0]] = self._frozen
        self._frozen = frozen

    def _on_progress(self, ev: dict) -> None:
        self.progress = ev

    def _on_run_finished(self, ev: dict) -> None:
        self.finished = ev
        self.progress = None
        if self.error is not None:
            # the run went on after it (an engine that did not flag it non-fatal): a warning
            self.warnings.append(self.error)
            self.error = None

    def _on_error(self, ev: dict) -> None:
        self.starting = False
        # A failed periodic checkpoint write (full disk) is reported with fatal=false while
        # training goes on: a warning, not a crash. A missing flag means fatal.
        if ev.get("fatal") is False:
            self.warnings.append(ev)
        else:
            self.error = ev

    # ---------------------------------------------------------------- answers
    @property
    def skipped_text(self) -> str:
        """'N lines skipped' for the run's header and report; empty when every line was read."""
        n = self.n_skipped
        if not n:
            return ""
        return f"{n} line{'s' if n != 1 else ''} of {EVENTS_FILE} skipped (malformed or not an event)."

    @property
    def status(self) -> str:
        # run_finished is the engine's own last word: it outranks an error reported before it
        if self.finished is not None:
            st = self.finished.get("status")
            return st if st in RUN_STATUSES else "crashed"
        if self.error is not None:
            if self.error.get("refused"):
                return "refused"         # the engine rejected the configuration: nothing ran
            return "killed" if self.killed else "crashed"
        if self.starting and self._alive is not False:
            return "starting"
        if self.run_started is None and self._n == 0:
            return "crashed" if self._alive is False and self.n_events else "new"
        return "crashed" if self._alive is False else "running"

    @property
    def name(self) -> str:
        if self.config and self.config.get("name"):
            return str(self.config["name"])
        return self.run_dir.name if self.run_dir is not None else "run"

    @property
    def n_epochs(self) -> int:
        return self._n

    @property
    def epochs_planned(self) -> int | None:
        if self.config and isinstance(self.config.get("epochs"), int):
            return self.config["epochs"]
        return None

    def columns(self) -> list[str]:
        return list(COLUMNS)

    def column(self, name: str) -> np.ndarray:
        """Read-only float64 view of one column, length n_epochs (NaN where absent)."""
        try:
            j = _COL[name]
        except KeyError:
            raise KeyError(f"unknown column {name!r}; expected one of {', '.join(COLUMNS)}") from None
        v = self._data[j, :self._n]
        v.flags.writeable = False
        return v

    def epoch_axis(self) -> np.ndarray:
        """x of each epoch row in the plots: epochs trained (1 for the first epoch), the
        numbering the CLI and every label use (events count from 0)."""
        return self.column("epoch") + 1.0

    def last(self, name: str) -> float:
        """Latest non-NaN value of a column (NaN when none)."""
        c = self.column(name)
        ok = np.flatnonzero(~np.isnan(c))
        return float(c[ok[-1]]) if ok.size else _NAN

    def frozen_matrix(self) -> np.ndarray:
        """blocks x epochs (uint8), 1 where the block was frozen during that epoch."""
        return self._frozen[:self._n, :len(self.block_names)].T.copy()

    def planned_frozen_matrix(self) -> np.ndarray:
        """blocks x planned epochs from the freeze plan's per-epoch frozen prefix (empty
        when the run has no plan)."""
        prefix = (self.freeze_plan or {}).get("frozen_prefix") or []
        nb = len(self.block_names)
        if not prefix or not nb:
            return np.zeros((nb, 0), dtype=np.uint8)
        p = np.asarray([_num(x) for x in prefix])
        p = np.nan_to_num(p, nan=0.0)
        return (np.arange(nb)[:, None] < p[None, :]).astype(np.uint8)

    def sieve_latest(self) -> dict | None:
        return self.sieve_updates[-1] if self.sieve_updates else None

    def timing(self) -> dict:
        """First start, resumes (times of each later run_started) and training time.

        ``wall_time`` is the engine's total over every session (run_finished carries it);
        without run_finished, the sum of epoch times recorded so far."""
        starts = [s.get("time") for s in self.sessions if isinstance(s.get("time"), (int, float))]
        resumes = [s.get("time") for s in self.sessions[1:] if s.get("resumed") and isinstance(s.get("time"), (int, float))]
        wall = (self.finished or {}).get("wall_time")
        if not isinstance(wall, (int, float)):
            et = self.column("epoch_time")
            wall = float(np.nansum(et)) if et.size and np.isfinite(et).any() else None
        return {"first_start": starts[0] if starts else None, "resumes": resumes, "training_time": wall,
                "last_event": self.last_event_time}

    def summary(self) -> dict:
        acc = self.column("test_acc")
        finite = acc[~np.isnan(acc)]
        fin = self.finished or {}
        ffin = fin.get("flops") if isinstance(fin.get("flops"), dict) else None
        if ffin:
            spent, dense = _num(ffin.get("spent")), _num(ffin.get("dense"))
            saved_d = ffin.get("saved") or {}
            saved = {k: _num(saved_d.get(k)) for k in ("sparsity", "freeze", "sieve")}
        else:
            spent, dense = self.last("flops_spent"), self.last("flops_dense")
            saved = {k: self.last("saved_" + k) for k in ("sparsity", "freeze", "sieve")}
        epochs_done = fin.get("epochs_completed") if isinstance(fin.get("epochs_completed"), int) else self._n
        return {
            "status": self.status,
            "name": self.name,
            "preset": (self.config or {}).get("preset", self.name),
            "run_dir": str(self.run_dir) if self.run_dir is not None else None,
            "device": (self.run_started or {}).get("device"),
            "model": ((self.config or {}).get("model") or {}).get("name"),
            "dataset": ((self.config or {}).get("data") or {}).get("name"),
            "epochs_done": epochs_done,
            "epochs_planned": self.epochs_planned,
            "final_test_acc": float(finite[-1]) if finite.size else None,
            "best_test_acc": float(finite.max()) if finite.size else None,
            "final_train_loss": _none_if_nan(self.last("train_loss")),
            "flops_spent": _none_if_nan(spent),
            "flops_dense": _none_if_nan(dense),
            "flops_saved": {k: _none_if_nan(v) for k, v in saved.items()},
            "wall_time": fin.get("wall_time"),
            "error": (self.error or {}).get("message"),
            "warnings": [str(w.get("message", "")) for w in self.warnings],
        }

    def __repr__(self) -> str:
        return f"RunModel({self.name!r}, {self.status}, epochs={self._n}, events={self.n_events})"


def _overhead(flops: dict) -> float | None:
    """The epoch's cumulative overhead FLOPs (analysis, scoring, dense gradients) summed."""
    ov = flops.get("overhead") if isinstance(flops, dict) else None
    if not isinstance(ov, dict):
        return None
    return sum(float(v) for v in ov.values() if isinstance(v, (int, float)) and not isinstance(v, bool))


def differing_fields(configs: list[dict | None], limit: int = 3) -> list[str]:
    """The dotted configuration keys whose values differ between runs (name and folders
    excluded): what tells two runs of one preset apart in compare mode."""
    flat = [flatten(c or {}) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    skip = ("name", "run_dir", "preset")
    diff = [k for k in keys if k not in skip and not k.startswith("data.root")
            and len({repr(f.get(k)) for f in flat}) > 1]
    return _distinguishing(flat, diff, limit)


# ties go to the settings a researcher compares first
_KEY_ORDER = ("sparsity.algorithm", "sparsity.target", "freeze.target", "sieve.ratio", "seed", "epochs")


def _distinguishing(flat: list[dict], keys: list[str], limit: int) -> list[str]:
    """Up to ``limit`` of ``keys`` chosen so that the runs' labels differ: each pick tells
    apart the most pairs of runs not told apart yet (alphabetical first picks used to give
    two runs that differ only in sieve.ratio the same label)."""
    n = len(flat)
    open_pairs = {(i, j) for i in range(n) for j in range(i + 1, n)}
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    chosen: list[str] = []
    def split(k: str, pairs: set[tuple[int, int]]) -> int:
        return sum(repr(flat[i].get(k)) != repr(flat[j].get(k)) for i, j in pairs)

    while open_pairs and len(chosen) < limit:
        pairs = open_pairs
        best = max((k for k in keys if k not in chosen),
                   key=lambda k: (split(k, pairs), -rank.get(k, len(rank))), default=None)
        if best is None or split(best, pairs) == 0:
            break
        chosen.append(best)
        open_pairs = {(i, j) for i, j in open_pairs if repr(flat[i].get(best)) == repr(flat[j].get(best))}
    # room left: more of what differs, the familiar settings first
    rest = sorted((k for k in keys if k not in chosen), key=lambda k: rank.get(k, len(rank)))
    return chosen + rest[:max(0, limit - len(chosen))]


def config_value(config: dict | None, key: str):
    return flatten(config or {}).get(key)


def _none_if_nan(x: float):
    return None if x != x else x


def is_run_dir(path) -> bool:
    p = Path(path)
    return (p / EVENTS_FILE).is_file() or (p / "config.yaml").is_file()


def scan_runs(runs_dir) -> list[Path]:
    """Run directories under a runs folder, newest first (by events.jsonl mtime)."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and is_run_dir(p)]

    def mtime(p: Path) -> float:
        try:
            return os.stat(p / EVENTS_FILE).st_mtime
        except OSError:
            return 0.0
    return sorted(found, key=mtime, reverse=True)
