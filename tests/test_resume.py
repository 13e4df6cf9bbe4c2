"""Checkpoint / resume: SIGKILL mid-run then --resume gives one continuous run; a corrupt newest
checkpoint is detected and the previous one used."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--model", "tiny-random", "--algo", "rapid", "--sampler", "hf", "--no-progress", "generation.max_new_tokens=8",
        "eval.num_problems=4", "eval.n_samples=2", "eval.k=[1,2]", "eval.every_steps=2", "algo_args.group_size=2",
        "algo_args.prompts_per_step=2", "algo_args.steps_per_generation=2", "train.checkpoint_every=2"]


def cmd(*extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "launchers" / "run.py"), *ARGS, *extra]


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_sigkill_and_resume_is_one_continuous_run(tmp_path):
    full = tmp_path / "full"
    r = subprocess.run(cmd("--output", str(full), "--max-steps", "6"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    out = tmp_path / "killed"
    p = subprocess.Popen(cmd("--output", str(out), "--max-steps", "6"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline:  # wait until a checkpoint exists and training went past it
        if (out / "checkpoints" / "LATEST").exists() and (out / "metrics.jsonl").exists() and len(rows(out / "metrics.jsonl")) >= 3:
            break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / "summary.json").exists()  # it really died mid-run
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--resume", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from step" in (out / "run.log").read_text()  # --no-progress: messages go to run.log

    m, e = rows(out / "metrics.jsonl"), rows(out / "eval.jsonl")
    assert [x["step"] for x in m] == [x["step"] for x in rows(full / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [x["step"] for x in e] == [x["step"] for x in rows(full / "eval.jsonl")] == [0, 2, 4, 6]
    # the evaluations' logged completions are redone with them: no duplicate, the same rows as the whole run
    assert [x["step"] for x in rows(out / "samples.jsonl")] == [x["step"] for x in rows(full / "samples.jsonl")]
    walls = [x["wall_s"] for x in m]
    assert walls == sorted(walls)  # one clock across the restart
    assert json.loads((out / "summary.json").read_text())["steps"] == 6

    # resuming a finished run (its final checkpoint) trains no further and keeps its files
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--resume", str(full), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [x["step"] for x in rows(full / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [x["step"] for x in rows(full / "eval.jsonl")] == [0, 2, 4, 6]

    # resumed from an earlier checkpoint, every file's rows after it are dropped and redone, none twice
    # (deterministic, unlike the kill above, which may land before anything past its checkpoint is written)
    samples = [x["step"] for x in rows(full / "samples.jsonl")]
    assert samples[-1] == 6
    shutil.rmtree(full / "checkpoints" / "step0000006")  # as if killed after its rows, before its checkpoint
    (full / "checkpoints" / "LATEST").write_text("step0000004")
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--resume", str(full), "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from step0000004" in (full / "run.log").read_text()
    assert [x["step"] for x in rows(full / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [x["step"] for x in rows(full / "eval.jsonl")] == [0, 2, 4, 6]
    assert [x["step"] for x in rows(full / "samples.jsonl")] == samples


def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path):
    out = tmp_path / "run"
    r = subprocess.run(cmd("--output", str(out), "--max-steps", "4"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    ck = out / "checkpoints"
    assert (ck / "LATEST").read_text() == "step0000004"
    assert sorted(d.name for d in ck.glob("step*")) == ["step0000002", "step0000004"]  # the newest two kept
    victim = max((p for p in (ck / "step0000004").rglob("*.pt")), key=lambda p: p.stat().st_size)
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--resume", str(out), "--max-steps", "6",
                        "--no-progress"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "checkpoint step0000004 is unusable" in r.stderr
    assert "resumed from step0000002" in (out / "run.log").read_text()
    assert [x["step"] for x in rows(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [x["step"] for x in rows(out / "eval.jsonl")] == [0, 2, 4, 6]
