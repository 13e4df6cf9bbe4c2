"""Harness pieces: the training clock leaves evaluation and checkpointing out; pass@k by hand."""

from __future__ import annotations

import time

import pytest

from rapidbench.harness import Clock, pass_at_k


def test_clock_excludes_eval_and_ckpt():
    clock = Clock()
    with clock.phase("gen"):
        time.sleep(0.05)
    before = clock.training_s()
    with clock.phase("eval"):  # a slow evaluation...
        time.sleep(0.3)
    with clock.phase("ckpt"):
        time.sleep(0.1)
    after = clock.training_s()
    assert after - before < 0.05  # ...does not move the training axis
    assert clock.totals["eval"] >= 0.3 and clock.totals["gen"] >= 0.05
    resumed = Clock(offset=10.0)  # a resumed run continues its axis
    assert resumed.training_s() >= 10.0


def test_pass_at_k_by_hand():
    # n = 4 samples, c = 1 correct: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    # n = 8, c = 2, k = 4: 1 - C(6,4)/C(8,4) = 1 - 15/70
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 4, 1) == 1.0 and pass_at_k(5, 3, 3) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_cadence_crossing():
    from rapidbench.runner import crossed

    # RAPID with A = 4 moves 4 steps per generation: eval every 8 fires when 8, 16, ... is passed
    assert [crossed(b, b + 4, 8) for b in (0, 4, 8, 12)] == [False, True, False, True]
    assert crossed(6, 9, 8) and not crossed(9, 12, 8) and not crossed(0, 100, 0)


def test_tensorboard_mirror_on_the_training_clock(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rapidbench.harness import ExternalLog

    ext = ExternalLog(["tensorboard"], tmp_path, {"algo": "rapid"})
    ext.log({"step": 1, "wall_s": 10.0, "reward_mean": 0.25, "note": "x"}, "train")
    ext.log({"step": 2, "wall_s": 25.0, "reward_mean": 0.5}, "train")
    ext.log({"step": 2, "wall_s": 25.0, "pass@1": 0.75}, "eval")
    ext.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    rew = acc.Scalars("train/reward_mean")
    assert [(e.step, e.value, e.wall_time) for e in rew] == [(1, 0.25, 10.0), (2, 0.5, 25.0)]
    assert [e.value for e in acc.Scalars("eval/pass@1")] == [0.75]
    assert "train/note" not in acc.Tags()["scalars"]


def test_missing_logger_is_a_one_line_error_before_anything_is_written(tmp_path):
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "rapidbench", "run", "--model", "tiny-random", "--output", str(out),
                        "loggers=[wandb]"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "rapidbench: error: loggers: wandb is not installed (pip install wandb)"]
    assert not out.exists()
    r = subprocess.run([sys.executable, "-m", "rapidbench", "run", "--output", str(out), "loggers=[nope]"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "loggers[0]: 'nope' is not one of tensorboard, wandb" in r.stderr


def test_hardware_tag_names_the_machine_class():
    from rapidbench.harness import hardware_tag, machine_info

    amd = {"cpu": "AMD EPYC", "cores": 2, "avx512": False, "avx512_bf16": False}
    assert hardware_tag(amd) == "amd-avx2-2c"
    assert hardware_tag({**amd, "cpu": "Intel(R) Xeon(R) Processor", "avx512": True, "avx512_bf16": True}) == \
        "intel-avx512bf16-2c"
    assert hardware_tag({**amd, "cpu": "Intel Xeon", "avx512": True, "cores": 16}) == "intel-avx512-16c"
    assert hardware_tag({**amd, "gpus": ["NVIDIA A100-SXM4-80GB"] * 4}) == "cuda-a100-4gpu"
    assert hardware_tag({**amd, "gpus": ["NVIDIA H100 80GB HBM3"] * 8, "ranks": 16, "nodes": 2}) == "cuda-h100-16gpu-2node"
    assert hardware_tag({**amd, "gpus": ["NVIDIA GeForce RTX 4090"]}) == "cuda-4090-1gpu"
    # this machine's tag, checked against /proc/cpuinfo read here, not through machine_info()
    info = open("/proc/cpuinfo").read()
    flags = set(next(ln for ln in info.splitlines() if ln.startswith("flags")).split(":")[1].split())
    vendor = "intel" if "GenuineIntel" in info else "amd" if "AuthenticAMD" in info else "cpu"
    isa = "avx512bf16" if "avx512_bf16" in flags else "avx512" if "avx512f" in flags else "avx2"
    import os

    import torch

    if not torch.cuda.is_available():
        assert hardware_tag() == f"{vendor}-{isa}-{os.cpu_count()}c"
    assert machine_info()["cores"] == os.cpu_count()
    assert machine_info()["amx"] == ("amx_bf16" in flags)  # recorded, not in the tag: old records lack it


def test_a_run_something_else_ran_beside_is_called_disturbed():
    """From the load record: other processes' CPU seconds over the run's wall time (busy_s - cpu_s),
    or, in records from before busy_s, the share of the cores a run that fills them got."""
    from rapidbench.harness import LoadMeter, disturbed

    cpu = {"cpu": "AMD EPYC", "cores": 2}
    alone = {"load": {"wall_s": 300.0, "cpu_s": 580.0, "busy_s": 590.0}, "machine": cpu}  # 0.03 cores of others
    beside = {"load": {"wall_s": 300.0, "cpu_s": 560.0, "busy_s": 599.0}, "machine": cpu}  # 0.13 cores
    assert disturbed(alone) is None and disturbed(beside) == "other processes used 0.13 cores > 0.1"
    # older records: a 2-core run's own share, 0.93 of the cores, is below 0.95
    assert disturbed({"load": {"wall_s": 300.0, "cpu_s": 558.0}, "machine": cpu}) == "CPU share 0.930 < 0.95"
    assert disturbed({"load": {"wall_s": 300.0, "cpu_s": 585.0}, "machine": cpu}) is None
    # no record, or GPUs doing the work: not judged
    assert disturbed({"machine": cpu}) is None
    assert disturbed({**beside, "machine": {**cpu, "gpus": 4}}) is None
    # the meter itself: a process that only sleeps, and a busy child process beside it counted as others
    import subprocess
    import sys

    meter = LoadMeter(probe=False)  # the probe's own CPU is this process's, but keep the test to the counters
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass"])
    time.sleep(2.0)
    rec = meter.summary()  # the child is not waited for yet: its CPU is not this process's
    spin.wait()
    if rec["busy_s"] is not None:  # None where /proc/stat is a bigger host's
        assert rec["busy_s"] - rec["cpu_s"] >= 1.0 and disturbed({"load": rec, "machine": cpu})


def test_a_run_is_called_slowed_against_the_sweeps_median_start_speed():
    """The lowest of a run's bf16 readings against 0.75 x the median *start* reading of all runs
    (here 1000): 740 at the end is slowed, 760 is not; a slow start counts like a slow end; runs
    without readings are never slowed and do not move the median."""
    from rapidbench.harness import slowed

    def run(start=None, end=None):
        return {"load": {**({"speed_start": {"bf16_gflops": start}} if start else {}),
                         **({"speed_end": {"bf16_gflops": end}} if end else {})}}

    runs = [run(1000, 990), run(1000, 740), run(980, 760), run(700, 1000), run(1200, 1100), {"load": {}}, {}]
    assert slowed(runs) == [False, True, False, True, False, False, False]
    assert slowed(runs, below=0.5) == [False] * 7
    assert slowed([{}, {"load": {"wall_s": 1.0}}]) == [False, False]
    # the reference is the start readings' median (1000), not all readings' (1200) nor the ends' (1400)
    assert slowed([run(1000, 1400)] * 3 + [run(800, 1400)]) == [False] * 4
    # strictly below: 750 is 0.75 x 1000 exactly
    assert slowed([run(1000, 1000)] * 2 + [run(750, 1000)]) == [False] * 3
    # one reading is judged alone; an end-only reading does not enter the median
    assert slowed([run(1000, 1000)] * 2 + [run(start=700), run(end=700)]) == [False, False, True, True]
    # a slowdown between the ends, seen at an evaluation; mid-run readings do not enter the median
    mid = run(1000, 1000)
    mid["load"]["speed_during"] = [{"bf16_gflops": 990}, {"bf16_gflops": 600}, {"bf16_gflops": 980}]
    low = run(1000, 1000)
    low["load"]["speed_during"] = [{"bf16_gflops": 10}] * 9
    assert slowed([run(1000, 1000), mid, low]) == [False, True, True]


def test_the_load_record_has_the_hosts_speed_at_start_during_and_end():
    """speed_probe's three kernels, in every run's load record: positive rates of work, and the
    same keys at both ends and at each mid-run probe, so a later reader can divide one by another."""
    from rapidbench.harness import LoadMeter, speed_probe

    probe = speed_probe(seconds=0.02)
    assert set(probe) == {"bf16_gflops", "fp32_gflops", "copy_gbs"} and all(v > 0 for v in probe.values())
    meter = LoadMeter()
    rec = meter.summary()
    assert set(rec["speed_start"]) == set(rec["speed_end"]) == set(probe) and rec["speed_during"] == []
    assert all(v > 0 for v in (*rec["speed_start"].values(), *rec["speed_end"].values()))
    meter.probe()
    meter.probe()
    during = meter.summary()["speed_during"]
    assert len(during) == 2 and all(set(r) == set(probe) and min(r.values()) > 0 for r in during)
    unprobed = LoadMeter(probe=False)
    unprobed.probe()
    assert not {"speed_start", "speed_during"} & set(unprobed.summary())
