"""CLI: list, run --help, bad input gives one line naming the choices and writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rb(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rapidbench", *args], capture_output=True, text=True, timeout=300, **kw)


def test_list_shows_every_registry():
    r = rb("list")
    assert r.returncode == 0, r.stderr
    for needle in ("algorithms:", "  rapid ", "  grpo ", "tasks:", "  arith ", "samplers:", "  vllm ", "  hf ",
                   "trainers:", "  deepspeed ", "models:", "  smollm2-135m ", "presets:"):
        assert needle in r.stdout
    # every entry has a one-line description
    for line in r.stdout.splitlines():
        if line.startswith("  "):
            assert len(line.split(None, 1)) == 2, line


def test_run_help_lists_the_shared_flags():
    r = rb("run", "--help")
    assert r.returncode == 0
    for flag in ("--algo", "--task", "--model", "--sampler", "--zero-stage", "--max-steps", "--time-budget",
                 "--seed", "--output", "--resume", "--config", "--preset"):
        assert flag in r.stdout
    r2 = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--help"], capture_output=True, text=True)
    assert r2.returncode == 0 and r2.stdout.split("options:")[1] == r.stdout.split("options:")[1]


def test_unknown_algorithm_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "run"
    r = rb("run", "--algo", "nope", "--task", "arith", "--output", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == ["rapidbench: error: unknown algorithm 'nope'; registered algorithms: dapo, grpo, pg, ppo, rapid"]
    assert not out.exists()


def test_unknown_task_model_and_key(tmp_path):
    r = rb("run", "--task", "nope", "--output", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown task 'nope'; registered tasks:" in r.stderr
    r = rb("run", "train.nope=1", "--output", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown key train.nope" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    r = rb("run", "--model", "tiny-random", "--output", str(out), "--max-steps", "1")
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert (out / "metrics.jsonl").read_text() == '{"step": 1}\n'


def test_option_values_a_plugin_rejects_are_one_line_errors(tmp_path):
    r = rb("run", "--model", "tiny-random", "task_args.levels=[7]", "--output", str(tmp_path / "x"))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == "rapidbench: error: arith: unknown level [7]; valid levels: [1, 2]"
    assert not (tmp_path / "x" / "metrics.jsonl").exists()


def test_grade_a_code_completion_and_its_misuse(tmp_path):
    """`rapidbench grade`: one JSON line; task_args select the sandbox; bad input is one line."""
    good = tmp_path / "c.txt"
    good.write_text("```python\ndef remove_Occ(s, ch):\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n```\n")
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "mbpp", "--id", "11", "--completion", str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "pass", r.stderr
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "mbpp", "--id", "11", "--completion", str(good), "task_args.sandbox=process"],
                       capture_output=True, text=True)
    out = json.loads(r.stdout)
    assert out["passed"] and "[sandbox: process" in out["detail"]  # the weaker mode says so
    for argv, words in [(["--completion", str(tmp_path / "missing.txt")], "no such file"),
                        (["--completion", str(good), "task_args.sandbox=docker"], "task_args.sandbox"),
                        (["--completion", str(good), "train.lr=1"], "task_args.* overrides only")]:
        r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "mbpp", "--id", "11", *argv], capture_output=True, text=True)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    env = {**os.environ, "PATH": "/nonexistent"}  # no bubblewrap: one line naming the fix
    r = subprocess.run([sys.executable, "-m", "rapidbench", "grade", "--task", "mbpp", "--id", "11", "--completion", str(good)], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2 and "apt-get install bubblewrap" in r.stderr and len(r.stderr.strip().splitlines()) == 1
