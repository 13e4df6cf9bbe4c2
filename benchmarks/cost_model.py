"""Calibrate the cost model on this machine and check it against the runs it made.

Calibration: six short runs of the suite's own loop (launchers/run.py: vLLM sampler, DeepSpeed
trainer, dtype auto, the embedded model), GRPO and RAPID A = 4 in the short (`*-cpu`) and the
long-completion (`*-cpu-long`, task `count`) regime, GRPO with 16 long rows a step and RAPID
A = 16 (one generation of 64 long sequences); their per-step metrics (generation time with each
generation's mean and longest completion, training time with and without a pi_old pass, grading,
sync) are fitted by rapidbench.costmodel. Short runs, not a grid of fixed shapes: a run's shapes
change every step, and timing one shape over and over measured warmer kernels than any run sees
(the first version did, and over-predicted training by ~35%). ~13 minutes on the AMX machine; on
the AMD one the first five took ~7. The same setting's runs differ by up to ~30% in seconds per
step on this shared machine (GRPO's ten: 2.8-3.7 s), so no calibration predicts every run within
15%. The headline is therefore a setting's error: the mean prediction over its runs against its
mean measured seconds per step (the JSON's `settings`), with the single runs' worst and mean error
beside it (`runs`).
History on amd-avx512bf16-2c (2026-11-27): four calibration runs (long rows only 4 a step) missed
the `arith` long pilot (16 rows of ~160 tokens a step) by -17.3% and the long sweep's settings by
at most -9.6%; the fifth run was added for that shape, decided before re-running, and the new
calibration's worst setting is 0.139 (RAPID A = 8 of the long sweep; the pilot +1.1%), its long
sweep errors -4% to -14% (at 113 runs, seeds 0-4 of the long sweep: 0.128, -4% to -13%; at 161,
its 80 planned runs and 6 more: 0.102, -3% to -10%): coverage gained, not accuracy everywhere. Two
calibrations of this machine trade intercept for slope (train t0 0.89 -> 0.0 s, t1 +50%) on the
same shapes.
History on intel-avx512bf16-2c (2026-11-27, the long regime's pilot, one run per setting): five
runs predicted GRPO -4.2%, RAPID A = 4 -3.9% and A = 16 -20.4% (a 64-sequence generation, never
seen by the fit, under-predicted by ~40%); the sixth run was added for it, decided before
re-calibrating. The re-calibration ran on a host that had slowed by up to ~1.7x since (the same
training shape 2.66 -> 4.66 s; a bf16 matmul 1.96 -> 1.14 TFLOP/s within 15 min; nothing in the
load record): A = 16 +0.3%, GRPO +6.9%, A = 4 +15.6%, runs made on the slowed host -14% to -38%.

Check: predicts the seconds per step of every finished run under results/runs/*/<this machine's
tag>/ from its own settings (A, B, G, mean prompt length, mean and longest completion) and
compares with what it measured, per run and per setting. Writes results/bench/<tag>/cost_model.json (the calibration
`rapidbench predict` reads, with each calibration run's per-generation share of a step); the last
line is the worst relative error of a setting's prediction.

    python benchmarks/cost_model.py [--model smollm2-135m] [--check-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent


# Short runs of the suite's own loop (launchers/run.py, the engines and shapes a real run has):
# both regimes, A = 1 and A = 4, so the fit sees generations of 16 and 64 sequences, short and long
# completions, steps with and without a pi_old pass. (preset, optimizer steps, overrides)
CALIBRATION_RUNS = [
    ("grpo-cpu", 9, []),
    ("rapid-cpu", 16, ["algo_args.steps_per_generation=4"]),
    ("grpo-cpu-long", 4, []),
    ("rapid-cpu-long", 12, ["algo_args.steps_per_generation=4"]),
    # 16 long rows per step (2 full micro-batches of ~200-token rows): without it the fit saw long
    # rows only 4 at a time and under-predicted the arith long pilot (16 rows of ~160 tokens) by 17%
    ("grpo-cpu-long", 6, ["algo_args.prompts_per_step=4"]),
    # one generation of 64 long sequences (A = 16): without it the fit saw long generations of at most
    # 16 and, extrapolated, under-predicted A = 16's generation by ~40% on the AMX machine (-20% a step)
    ("rapid-cpu-long", 32, ["algo_args.steps_per_generation=16"]),
]
QUIET_EVAL = ["eval.at_start=false", "eval.every_steps=0", "eval.every_seconds=0", "eval.num_problems=2",
              "eval.n_samples=1", "eval.k=[1]"]  # the run's last evaluation only, and a tiny one: it is off the clock


def calibrate(model: str, workdir: Path):
    from rapidbench.costmodel import fit, observations, schedule
    from rapidbench.harness import hardware_tag

    obs = {"gen": [], "train": [], "grade": [], "sync": []}
    runs = []
    for i, (preset, steps, extra) in enumerate(CALIBRATION_RUNS):
        out = workdir / f"{i}-{preset}"  # a preset may be calibrated twice, with other overrides
        cmd = [sys.executable, str(ROOT / "launchers" / "run.py"), "--preset", preset, "--model", model,
               "--max-steps", str(steps), "--seed", "4242", "--output", str(out), "--no-progress", *QUIET_EVAL, *extra]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        config = json.loads((out / "config.json").read_text())
        metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        P = prompt_tokens(model, config["task"], config.get("task_args") or {})
        got = observations(config, metrics, P)
        for k in obs:
            obs[k] += got[k]
        # the share a larger A can save, of the phases' time after the first (warm-up) generation
        phases = {k: sum(m[k] for m in metrics if m["generation"] > 0) for k in ("gen_s", "grade_s", "sync_s", "train_s")}
        runs.append({"preset": preset, "steps": steps, "overrides": extra, "schedule": schedule(config),
                     "prompt_tokens": round(P, 1),
                     "completion_tokens": round(statistics.mean(g[1] for g in got["gen"]), 1),
                     "longest": round(statistics.mean(g[2] for g in got["gen"]), 1),
                     "per_generation_share": round((phases["gen_s"] + phases["grade_s"] + phases["sync_s"])
                                                   / sum(phases.values()), 3)})
        print(runs[-1], flush=True)
    cal = fit(obs["gen"], obs["train"], obs["grade"], obs["sync"], machine=hardware_tag())
    return cal, {"runs": runs, **obs}


def prompt_tokens(model: str, task: str, task_args: dict, cache: dict = {}) -> float:  # noqa: B006 - a memo
    """Mean prompt length, in tokens, of a task's training problems as a run renders them."""
    key = (model, task, json.dumps(task_args, sort_keys=True))
    if key not in cache:
        from transformers import AutoTokenizer

        from rapidbench.config import build
        from rapidbench.models import resolve_model
        from rapidbench.registry import TASKS

        cls = TASKS.get(task)
        t = cls(build(cls.Options, task_args, "task_args"))
        tok = AutoTokenizer.from_pretrained(resolve_model(model))
        cache[key] = statistics.mean(len(tok(t.render_prompt(p, tok), add_special_tokens=False)["input_ids"])
                                     for p in t.train_problems()[:64])
    return cache[key]


def check_runs(cal) -> tuple[list[dict], list[str]]:
    """Predicted vs measured seconds per step for every finished run of this machine that records
    its generations' longest completions (runs from before that metric are listed as skipped)."""
    from rapidbench.costmodel import Setting, schedule, step_seconds
    from rapidbench.harness import hardware_tag
    from rapidbench.runs import find_runs

    rows, skipped = [], []
    for r in find_runs([str(p) for p in (ROOT / "results" / "runs").glob(f"*/{hardware_tag()}")]):
        if r.summary["algo"] == "ppo" or not r.metrics:
            continue  # a critic's forward and backward are outside the model
        gens = [m for m in r.metrics if m.get("gen_s", 0) > 0]
        if not all("longest" in m for m in gens):
            skipped.append(str(r.path.relative_to(ROOT)))
            continue
        A, B, G = schedule(r.config)
        L = statistics.mean(m["tokens"] / (A * B * G) for m in gens)
        Lm = statistics.mean(m["longest"] for m in gens)
        old = (r.summary.get("dtype") or {}).get("old_logprobs", "trainer") == "trainer"
        P = prompt_tokens(r.config["model"], r.config["task"], r.config.get("task_args") or {})
        predicted = step_seconds(cal, Setting(A, B, G, P, L, old, Lm))
        measured = r.summary["train_wall_s"] / max(1, r.summary["steps"])
        rows.append({"run": str(r.path.relative_to(ROOT)), "setting": r.label, "A": A, "completion_tokens": round(L, 1),
                     "longest": round(Lm, 1), "predicted_s_per_step": round(predicted, 3),
                     "measured_s_per_step": round(measured, 3), "error": round(predicted / measured - 1, 3)})
        print(rows[-1], flush=True)
    return rows, skipped


def by_setting(rows: list[dict]) -> list[dict]:
    """Per setting (a run directory's parent: one sweep's setting, all its seeds): mean predicted vs
    mean measured seconds per step. What the model claims to predict is a setting's cost; one run's
    seconds per step also carry this shared machine's load (GRPO's ten runs: 2.8-3.7 s)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(Path(r["run"]).parent), []).append(r)
    out = []
    for where, rs in groups.items():
        pred = statistics.mean(r["predicted_s_per_step"] for r in rs)
        meas = statistics.mean(r["measured_s_per_step"] for r in rs)
        out.append({"setting": where, "runs": len(rs), "predicted_s_per_step": round(pred, 3),
                    "measured_s_per_step": round(meas, 3), "error": round(pred / meas - 1, 3),
                    "runs_error_range": [min(r["error"] for r in rs), max(r["error"] for r in rs)]})
    return out


def fitted_on(measured: dict) -> str:
    """What a calibration was fitted on, from its own record: with --check-only a kept calibration
    may predate a run added to CALIBRATION_RUNS since, so the list is not the one to describe."""
    presets = [r["preset"] for r in measured["runs"]]
    return (f"calibrated on {len(presets)} short runs of the suite's loop ({len(measured['gen'])} generations, "
            f"{len(measured['train'])} optimizer steps; {', '.join(presets)})")


if __name__ == "__main__":
    import tempfile
    from dataclasses import asdict

    from common import headline, write

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--check-only", action="store_true",
                    help="keep this machine's calibration (results/bench/<tag>/cost_model.json); check it against "
                         "the runs finished since")
    args = ap.parse_args()
    if args.check_only:
        from rapidbench.costmodel import Calibration
        from rapidbench.harness import hardware_tag

        path = ROOT / "results" / "bench" / hardware_tag() / "cost_model.json"
        if not path.is_file():
            sys.exit(f"cost_model: no calibration at {path}: run without --check-only first")
        cal, measured = Calibration.load(path), json.loads(path.read_text())["measurements"]
    else:
        with tempfile.TemporaryDirectory(prefix="rapidbench-costmodel-") as tmp:
            cal, measured = calibrate(args.model, Path(tmp))
    print("calibration", cal, flush=True)
    rows, skipped = check_runs(cal)
    settings = by_setting(rows)
    worst = max((abs(r["error"]) for r in settings), default=None)
    worst_run = max((abs(r["error"]) for r in rows), default=None)
    head = headline("cost model: worst |predicted / measured - 1| of a setting's mean seconds per step over this "
                    "machine's runs", worst if worst is None else round(worst, 3),
                    f"{fitted_on(measured)}, checked on "
                    f"{len(settings)} settings' {len(rows)} finished runs (PPO excluded: its critic is not in the "
                    f"model; {len(skipped)} runs from before the 'longest' metric skipped)"
                    + (f"; single runs: worst {worst_run:.3f}, mean error {statistics.mean(r['error'] for r in rows):+.3f}, "
                       f"{sum(abs(r['error']) <= 0.15 for r in rows)} of {len(rows)} within 0.15" if rows else ""),
                    target="<= 0.15", met=worst is not None and worst <= 0.15)
    out = write("cost_model", {"calibration": asdict(cal), "measurements": measured, "settings": settings,
                               "runs": rows, "skipped": skipped}, head)
    print(f"wrote {out}")
    print(f"cost model worst error over {len(settings)} settings: {worst} (over {len(rows)} single runs: {worst_run})")
