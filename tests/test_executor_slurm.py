import pytest

from engine.executor.base import JobInfo
from engine.executor.slurm import SlurmOptions, batch_script, parse_squeue, time_seconds


def test_time_formats():
    assert time_seconds("30") == 1800
    assert time_seconds("2:30") == 150
    assert time_seconds("1:00:00") == 3600
    assert time_seconds("1-12") == 36 * 3600
    assert time_seconds("1-0:30:05") == 24 * 3600 + 30 * 60 + 5
    with pytest.raises(ValueError, match="slurm.time"):
        time_seconds("soon")


def test_options_refuse_bad_values():
    with pytest.raises(ValueError, match="slurm.cpus_per_task"):
        SlurmOptions(cpus_per_task=0).validate()
    with pytest.raises(ValueError, match="slurm.array_parallelism"):
        SlurmOptions(array_parallelism=-1).validate()


def test_batch_script_is_a_throttled_array_with_signal_and_requeue():
    opts = SlurmOptions(partition="gpu", array_parallelism=2, gpus_per_node=1)
    s = batch_script([["python", "-m", "engine", "run"], ["python", "x y"]], "spfde-demo", "/s/logs", opts)
    assert "#SBATCH --array=0-1%2" in s
    assert "#SBATCH --partition=gpu" in s and "#SBATCH --gpus-per-node=1" in s
    assert "#SBATCH --requeue" in s and "#SBATCH --signal=B:TERM@120" in s
    assert "1) exec python 'x y' ;;" in s
    with pytest.raises(ValueError):
        batch_script([], "n", "/l", opts)


def test_parse_squeue_and_active():
    jobs = parse_squeue("12_0|RUNNING|node1|0:05|None\n12_1|PENDING||0:00|Priority\n")
    assert jobs["12_0"].node == "node1" and jobs["12_0"].reason == ""
    assert jobs["12_1"].reason == "Priority" and jobs["12_1"].active
    assert not JobInfo("9", "ENDED").active
