"""Distributed data parallel training (engine.training.distributed) on the CPU: gloo, 2 processes.

One short torchrun job trains with every technique on and is checked rank against rank (masks,
frozen prefix, sieve queue and weights identical after every epoch), its ledger against the
plan, and for failure handling: SIGKILL of rank 1 stops the job with an error event naming
the rank and a checkpoint, and ``resume`` ends exactly where an uninterrupted job ends."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import ConfigError, from_dict, load_preset
from engine.cost.projection import project
from engine.data.loaders import rank_slice
from engine.training import distributed, launcher

ROOT = Path(__file__).resolve().parent.parent

SHORT = ["name=dist", "device=cpu", "epochs=4", "interval=1", "batch_size=32", "model.width=0.25",
         "data.image_size=8", "data.train_size=200", "data.test_size=50", "data.num_classes=4",
         "freeze.target=0.1", "sieve.ratio=0.2", "sieve.update_ratio=0.5", "checkpoint.every=1",
         "checkpoint.keep=1", "distributed.nproc_per_node=2"]
CONFIG = load_preset("demo", SHORT).to_dict()


# ---------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("override, field", [
    ({"distributed.nproc_per_node": 0}, "distributed.nproc_per_node"),
    ({"distributed.nnodes": 0}, "distributed.nnodes"),
    ({"distributed.backend": "mpi"}, "distributed.backend"),
    ({"distributed.backend": "nccl", "device": "cpu"}, "distributed.backend"),
    ({"distributed.timeout_s": 1}, "distributed.timeout_s"),
    ({"distributed.nproc_per_node": 3, "batch_size": 64}, "batch_size"),
    ({"distributed.nproc_per_node": 2, "device": "cuda:1"}, "device"),
    ({"distributed.gpus": "0,x"}, "distributed.gpus"),
    ({"distributed.gpus": "0,0", "device": "cuda"}, "distributed.gpus"),
    ({"distributed.gpus": "0", "distributed.nproc_per_node": 2, "device": "cuda"}, "distributed.gpus"),
    ({"precision": "fp8"}, "precision"),
    ({"precision": "fp16", "device": "cpu"}, "precision"),
    ({"channels_last": True, "device": "cpu"}, "channels_last"),
])
def test_wrong_distributed_and_speed_values_are_config_errors(override, field):
    with pytest.raises(ConfigError) as exc:
        from_dict(CONFIG).replace(**override)
    assert field in [f for f, _ in exc.value.errors], exc.value.errors


def test_several_machines_need_torchrun_on_each(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)
    cfg = from_dict(CONFIG).replace(**{"distributed.nnodes": 2})
    with pytest.raises(ConfigError, match="torchrun on each"):
        launcher.needs_launch(cfg)
    assert launcher.needs_launch(from_dict(CONFIG))
    assert not launcher.needs_launch(from_dict(CONFIG).replace(**{"distributed.nproc_per_node": 1}))


def test_rank_slices_cover_every_global_batch_once():
    for n in (1, 2, 3, 31, 32, 33):
        for world in (1, 2, 3, 4):
            seen = []
            for r in range(world):
                lo, hi, real = rank_slice(n, (r, world))
                assert 0 <= lo < hi <= n and real in (0, hi - lo)
                seen += list(range(lo, lo + real))
            assert seen == list(range(n)), (n, world)


def test_fp16_and_channels_last_on_an_auto_cpu_device_are_config_errors():
    torch = pytest.importorskip("torch")
    from engine.training.precision import Speed
    for field, value in (("precision", "fp16"), ("channels_last", True)):
        cfg = from_dict(CONFIG).replace(**{"device": "auto", field: value})
        with pytest.raises(ConfigError) as exc:
            Speed(cfg, torch.device("cpu"))
        assert [f for f, _ in exc.value.errors] == [field]


def test_bf16_autocast_trains_on_the_cpu(tmp_path):
    torch = pytest.importorskip("torch")
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = from_dict(CONFIG).replace(**{"precision": "bf16", "epochs": 2, "distributed.nproc_per_node": 1,
                                       "sieve.ratio": 0.0, "freeze.target": 0.0})
    em = Emitter(tmp_path, stream=open(os.devnull, "w"))  # noqa: SIM115 (the test process closes it)
    tr = Trainer(cfg, tmp_path, em)
    dtypes = set()
    conv = next(m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))
    assert tr.fit() == "completed"
    em.close()
    assert dtypes == {torch.bfloat16}
    rec = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    ends = [e for e in rec if e["event"] == "epoch_end"]
    assert len(ends) == 2 and all(e["train_loss"] == e["train_loss"] for e in ends)   # finite
    started = next(e for e in rec if e["event"] == "run_started")
    assert started["speed"]["precision"] == "bf16" and started["distributed"]["world_size"] == 1


# ---------------------------------------------------------------------------- 2 processes

def _dumps(d: Path) -> dict[int, list[dict]]:
    return {r: [json.loads(l) for l in (d / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)}


def _start(args, dump: Path, tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **{distributed.DUMP_ENV: str(dump)})
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=open(tmp_path / f"{dump.name}.err", "a"))


def _events(proc, on_event=None) -> list[dict]:
    out = []
    for line in proc.stdout:
        if line.startswith("{"):
            ev = json.loads(line)
            out.append(ev)
            if on_event:
                on_event(ev)
    proc.wait(timeout=300)
    return out


@pytest.mark.slow
def test_two_processes_agree_match_the_plan_and_survive_a_killed_rank(tmp_path):
    cfg_path = tmp_path / "dist.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    run = ["run", "--config", str(cfg_path), "--run-dir", str(tmp_path / "runs")]

    # 1. uninterrupted
    ref = _start(run, tmp_path / "ref", tmp_path)
    ref_events = _events(ref)
    err = (tmp_path / "ref.err").read_text()[-3000:]
    assert ref.returncode == 0, err
    started = next(e for e in ref_events if e["event"] == "run_started")
    assert started["distributed"]["world_size"] == 2 and started["distributed"]["backend"] == "gloo"
    dumps = _dumps(tmp_path / "ref")
    assert len(dumps[0]) == CONFIG["epochs"] and dumps[0] == dumps[1]        # rank against rank
    assert len({d["frozen_prefix"] for d in dumps[0]}) > 1                  # freezing happened
    assert len({d["queue"] for d in dumps[0]}) > 1                          # the sieve swapped
    masks = [e for e in ref_events if e["event"] == "mask_update"]
    assert masks and all(len(e["mask_checksum"]) == 16 for e in masks)
    assert [e["event"] for e in ref_events].count("run_started") == 1      # rank 0 speaks alone
    flops = next(e for e in ref_events if e["event"] == "run_finished")["flops"]
    plan = project(from_dict(CONFIG))["flops"]
    assert flops["spent"] == pytest.approx(plan.get("spent", plan.get("total")), rel=1e-9)
    for source, value in plan["saved"].items():
        assert flops["saved"][source] == pytest.approx(value, rel=1e-9), source

    # 2. rank 1 killed after epoch 1: the job stops with a checkpoint and names the rank
    pids = {}

    def kill_rank1(ev):
        if ev["event"] == "run_started":
            pids.update({r["rank"]: r["pid"] for r in ev["distributed"]["ranks"]})
        if ev["event"] == "epoch_end" and ev["epoch"] == 1:
            os.kill(pids[1], signal.SIGKILL)
    job = _start(run, tmp_path / "killed", tmp_path)
    events = _events(job, kill_rank1)
    assert job.returncode != 0
    assert events[-1]["event"] == "error" and events[-1]["rank"] == 1, events[-1]
    assert "rank 1" in events[-1]["message"] and "resume" in events[-1]["message"]
    assert not any(e["event"] == "run_finished" for e in events)
    run_dir = Path(events[0]["run_dir"])
    assert (run_dir / "checkpoints" / "last.pt").is_file()

    # 3. resume with the same two processes: exactly the uninterrupted result (CPU, gloo)
    res = _start(["resume", str(run_dir)], tmp_path / "killed", tmp_path)
    res_events = _events(res)
    assert res.returncode == 0, (tmp_path / "killed.err").read_text()[-3000:]
    fin = next(e for e in res_events if e["event"] == "run_finished")
    assert fin["status"] == "completed"
    dumps_k = _dumps(tmp_path / "killed")
    assert dumps_k[0][-1] == dumps_k[1][-1] == dumps[0][-1]                  # params, masks, sieve
    assert fin["flops"] == flops
    assert fin["final"] == next(e for e in ref_events if e["event"] == "run_finished")["final"]
