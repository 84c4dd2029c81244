"""Checkpoint soak: random SIGKILLs, corrupted newest checkpoints and a full disk, against an
uninterrupted reference run of the same tiny configuration.

    python benchmarks/soak_checkpoints.py [--runs 4] [--kills 3] [--epochs 6] [--seed 0]

Each run is started, SIGKILLed at random moments (before its first checkpoint, mid-epoch,
during a checkpoint write: wherever the random delay lands) and resumed until it completes;
in every other run the newest checkpoint (last.pt) is also damaged before a resume (bytes
flipped, truncated, emptied or deleted). At the end every epoch's metrics must equal the
reference's exactly. A full disk is simulated with a small tmpfs when this machine lets us
mount one (root and CAP_SYS_ADMIN); otherwise the script says so.

Prints: kills survived, corruptions caught, runs resumed exactly, data lost (goal: 0), and the
load average.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAME = ("train_loss", "train_acc", "test_loss", "test_acc", "density", "lr", "samples", "samples_total",
        "active_samples", "frozen_blocks", "flops", "flops_epoch")


def tiny(epochs: int, run_dir: Path) -> dict:
    return {"name": "soak", "seed": 11, "device": "cpu", "epochs": epochs, "batch_size": 32, "interval": 1,
            "run_dir": str(run_dir), "model": {"name": "resnet20", "width": 0.25},
            "data": {"name": "synthetic", "image_size": 12, "train_size": 384, "test_size": 64, "num_classes": 4},
            "sparsity": {"target": 0.8}, "freeze": {"target": 0.1}, "sieve": {"ratio": 0.2},
            "checkpoint": {"every": 1, "keep": 2}}


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def engine(*args, kill_after: float | None = None) -> tuple[int | None, str, str]:
    """Run the engine CLI; SIGKILL it after ``kill_after`` seconds. Returns (rc or None if
    killed, stdout, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=kill_after)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        return None, out, err


def engine_until(args: list, ready) -> tuple[int | None, str, str]:
    """Run the engine CLI and SIGKILL it as soon as ``ready()`` is true (polled every 0.1 s);
    (rc or None if killed, stdout, stderr)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env(),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True)
        killed = False
        while p.poll() is None:
            if ready():
                p.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.1)
        p.wait()
        out.seek(0)
        err.seek(0)
        return (None if killed else p.returncode), out.read(), err.read()


def epochs_of(run_dir: Path) -> dict[int, dict]:
    """The last epoch_end record of each epoch in events.jsonl (a redone epoch supersedes)."""
    from engine.run.events import read_events
    return {e["epoch"]: e for e in read_events(run_dir / "events.jsonl") if e["event"] == "epoch_end"}


def damage(path: Path, rng: random.Random) -> str:
    kind = rng.choice(["flip", "truncate", "empty", "delete"])
    if not path.exists():
        return "absent"
    raw = bytearray(path.read_bytes())
    if kind == "flip":
        for _ in range(64):
            i = rng.randrange(len(raw))
            raw[i] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif kind == "truncate":
        path.write_bytes(bytes(raw[: rng.randrange(1, len(raw))]))
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.unlink()
    return kind


def find_run(base: Path) -> Path | None:
    runs = [p for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
    return runs[0] if runs else None


def soak_run(i: int, args, ref: dict[int, dict], work: Path, rng: random.Random, tally: dict, duration: float) -> None:
    base = work / f"run{i}"
    cfg = work / f"cfg{i}.yaml"
    cfg.write_text(yaml.safe_dump(tiny(args.epochs, base)))
    corrupt = i % 2 == 1
    rc, out, err = engine("run", "--config", str(cfg), kill_after=rng.uniform(0.2, 1.0) * duration)
    kills = int(rc is None)
    run_dir = find_run(base)
    if run_dir is None:            # killed before the folder existed: nothing to resume, start again
        rc, out, err = engine("run", "--config", str(cfg))
        run_dir = find_run(base)
    damaged = False
    attempts = 0
    while rc != 0 and attempts < args.kills + 4:
        attempts += 1
        ck = run_dir / "checkpoints"
        if corrupt and not damaged and (ck / "last.pt").exists() and list(ck.glob("epoch_*.pt")):
            kind = damage(run_dir / "checkpoints" / "last.pt", rng)
            damaged = True
            rc, out, err = engine("resume", str(run_dir))
            started = [json.loads(l) for l in out.splitlines() if l.startswith('{"event":"run_started"')]
            info = started[0].get("resume", {}) if started else {}
            caught = bool(info.get("skipped")) and not str(info.get("checkpoint", "")).endswith("last.pt")
            tally["corruptions"] += 1
            tally["caught"] += caught
            verdict = "caught, resumed from " + Path(info["checkpoint"]).name if caught else "NOT caught"
            print(f"  run {i}: last.pt {kind}: {verdict}"
                  f" ({info.get('epochs_redone')} epoch(s) redone)", flush=True)
            continue
        if corrupt and not damaged and kills >= args.kills:
            # the random kills never left an epoch file to fall back to: kill once there is one
            def has_fallback(ck=ck) -> bool:
                return (ck / "last.pt").exists() and bool(list(ck.glob("epoch_*.pt")))
            rc, out, err = engine_until(["resume", str(run_dir)], has_fallback)
            kills += rc is None
            continue
        delay = rng.uniform(0.1, 1.0) * duration if kills < args.kills else None
        rc, out, err = engine("resume", str(run_dir), kill_after=delay)
        if rc is None:
            kills += 1
        elif rc != 0:
            print(f"  run {i}: resume failed rc={rc}: {err.strip().splitlines()[-1:]}", flush=True)
    got = epochs_of(run_dir)
    exact = rc == 0 and all(e in got and all(got[e][f] == ref[e][f] for f in SAME) for e in ref)
    lost = sum(1 for e in ref if e not in got or any(got[e][f] != ref[e][f] for f in SAME))
    tally["kills"] += kills
    tally["survived"] += kills if rc == 0 else 0
    tally["exact"] += exact
    tally["lost"] += lost
    print(f"  run {i}: {kills} kill(s), {'completed' if rc == 0 else 'NOT completed'}, "
          f"{'exact' if exact else f'{lost} epoch(s) differ'}", flush=True)


def full_disk(work: Path, epochs: int) -> str:
    """Run on an 8 MiB tmpfs where the checkpoints (about 2.4 MiB each) do not all fit: the
    engine must warn at start, report each failed checkpoint, fail cleanly at worst (never a
    traceback or a temporary file left), and keep a checkpoint that resume verifies.
    Returns a one-line verdict."""
    mnt = work / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        return f"not run: cannot mount a tmpfs here ({(r.stderr or r.stdout).strip() or 'mount failed'})"
    try:
        cfg = work / "cfg_disk.yaml"
        d = tiny(epochs, mnt / "runs")
        d["model"]["width"] = 1.0            # checkpoints of about 2.4 MiB: not all fit in 8 MiB
        cfg.write_text(yaml.safe_dump(d))
        rc, out, err = engine("run", "--config", str(cfg))
        evs = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        errors = [e for e in evs if e["event"] == "error"]
        saved = [e for e in evs if e["event"] == "checkpoint"]
        tmp_left = list(mnt.rglob("*.tmp"))
        clean = "Traceback (most recent call last)" not in err and not tmp_left
        warned = "free" in err
        run_dir = find_run(mnt / "runs")
        verifies = "-"
        if run_dir is not None:
            r = subprocess.run([sys.executable, "-c", "import sys; from engine import checkpoint as c; "
                                "s, p, _ = c.load_newest(sys.argv[1]); print(p.name, s['position']['epoch'])",
                                str(run_dir)], cwd=ROOT, env=env(), capture_output=True, text=True)
            verifies = r.stdout.strip() or r.stderr.strip().splitlines()[-1][:100]
        return (f"rc={rc}, start warning {'yes' if warned else 'no'}, {len(saved)} checkpoint(s) written, "
                f"{len(errors)} error event(s) ({sum(1 for e in errors if e.get('fatal') is False)} non-fatal), "
                f"{'clean' if clean else 'NOT clean'}, newest verifying checkpoint: {verifies}")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs per run (at most)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="spfde-soak-"))
    try:
        cfg = work / "ref.yaml"
        cfg.write_text(yaml.safe_dump(tiny(args.epochs, work / "ref")))
        t0 = time.monotonic()
        rc, out, err = engine("run", "--config", str(cfg))
        duration = time.monotonic() - t0
        assert rc == 0, err
        ref = epochs_of(find_run(work / "ref"))
        print(f"reference: {args.epochs} epochs in {duration:.1f}s (process included); load {os.getloadavg()}", flush=True)
        tally = dict(kills=0, survived=0, corruptions=0, caught=0, exact=0, lost=0)
        for i in range(args.runs):
            soak_run(i, args, ref, work, rng, tally, duration)
        disk = full_disk(work, args.epochs)
        print()
        print(f"kills survived:      {tally['survived']}/{tally['kills']}")
        print(f"corruptions caught:  {tally['caught']}/{tally['corruptions']}")
        print(f"runs resumed exactly: {tally['exact']}/{args.runs}")
        print(f"data lost:           {tally['lost']} epoch(s)")
        print(f"full disk (tmpfs):   {disk}")
        print(f"load average:        {os.getloadavg()}")
        return 0 if tally["lost"] == 0 and tally["caught"] == tally["corruptions"] else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
