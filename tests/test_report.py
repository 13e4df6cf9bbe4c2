"""Reports: time-to-target interpolation and seed averaging by hand, tables from hand-made runs,
deterministic regeneration (and of the committed results/), `compare` planning and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rapidbench.report import build_report
from rapidbench.runs import find_runs, group, mean_curve
from rapidbench.stats import crossing_time

ROOT = Path(__file__).resolve().parent.parent


def test_time_to_target_interpolates_between_evaluations():
    t, acc = np.array([0.0, 10.0, 20.0]), np.array([0.2, 0.4, 0.8])
    assert crossing_time(t, acc, 0.6) == pytest.approx(15.0)  # halfway from 0.4 to 0.8
    assert crossing_time(t, acc, 0.4) == pytest.approx(10.0)
    assert crossing_time(t, acc, 0.1) == 0.0  # already there at the first evaluation
    assert crossing_time(t, acc, 0.81) is None
    # a touch that falls back does not count: 0.7 at 10 s dips to 0.5; it stays from 20 + 0.1/0.4 * 10 = 22.5 s
    assert crossing_time(np.array([0.0, 10, 20, 30]), np.array([0.2, 0.7, 0.5, 0.9]), 0.6) == pytest.approx(22.5)


def test_mean_curve_over_seeds_on_a_common_grid():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 1.0, 1.0]))
    b = (np.array([0.0, 16.0]), np.array([0.0, 0.8]))  # evaluated at other times, ends earlier
    grid, mean, lo, hi = mean_curve([a, b], points=5)
    assert grid.tolist() == [0.0, 5.0, 10.0, 15.0, 20.0]  # to the latest last evaluation
    # a: 0, .5, 1, 1, 1   b: 0, .25, .5, .75, .8 (held at its final 0.8 after 16 s)
    assert mean.tolist() == pytest.approx([0.0, 0.375, 0.75, 0.875, 0.9])  # ends at the mean of the finals
    assert lo.tolist() == pytest.approx([0.0, 0.25, 0.5, 0.75, 0.8]) and hi.tolist() == pytest.approx([0, .5, 1, 1, 1])


AMD = {"cpu": "AMD EPYC", "cores": 2, "avx512": False, "avx512_bf16": False, "python": "3.11.7", "packages": {}}


def fake_run(root: Path, algo: str, seed: int, evals: list[tuple[float, float]], a: int | None = None,
             phases=(30.0, 1.0, 2.0, 60.0), machine: dict | None = AMD) -> Path:
    """A run directory as the runner writes it, with a hand-made curve."""
    d = root / algo / f"seed{seed}"
    d.mkdir(parents=True)
    algo_args = {"group_size": 4, **({"steps_per_generation": a} if a else {})}
    (d / "config.json").write_text(json.dumps({"algo": algo, "task": "arith", "time_budget": 100.0, "algo_args": algo_args,
                                               "eval": {"n_samples": 4, "temperature": 0.7}}))
    (d / "eval.jsonl").write_text("".join(json.dumps({"step": i, "wall_s": t, "n_problems": 8, "pass@1": p,
                                                      "pass@4": min(1.0, 2 * p)}) + "\n" for i, (t, p) in enumerate(evals)))
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "generation": s, "wall_s": 10.0 * s,
                                                         "reward_mean": 0.1 * s}) + "\n" for s in range(1, 6)))
    wall = sum(phases) + 3.0
    (d / "summary.json").write_text(json.dumps({
        "algo": algo, "task": "arith", "model": "tiny-random", "seed": seed, "steps": 10, "train_wall_s": wall,
        "eval_s": 12.0, "ckpt_s": 1.0, "phases_s": dict(zip(("gen_s", "grade_s", "sync_s", "train_s"), phases)),
        "peak_rss_mib": 2048.0, "machine": machine}))
    return d


def make_runs(root: Path) -> Path:
    # grpo reaches 0.5 at 100 s on both seeds; rapid at 50 s and 70 s (mean curve: 60 s); ppo ends at 0.4
    for seed in (0, 1):
        fake_run(root, "grpo", seed, [(0.0, 0.3), (50.0, 0.4), (100.0, 0.5)])
        fake_run(root, "ppo", seed, [(0.0, 0.3), (100.0, 0.4)])
    fake_run(root, "rapid", 0, [(0.0, 0.3), (50.0, 0.5), (100.0, 0.6)], a=4)
    fake_run(root, "rapid", 1, [(0.0, 0.3), (50.0, 0.45), (100.0, 0.55)], a=4)
    return root


def tables(doc: str) -> list[dict[str, dict[str, str]]]:
    """Markdown tables in `doc` -> [{first cell: {header: cell}}]."""
    out, lines = [], doc.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("|---") or ln.startswith("|-"):
            head = [c.strip() for c in lines[i - 1].split("|")[1:-1]]
            body = {}
            for row in lines[i + 1:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.split("|")[1:-1]]
                body[cells[0]] = dict(zip(head, cells))
            out.append(body)
    return out


def test_report_tables_from_hand_made_runs(tmp_path):
    root = make_runs(tmp_path / "runs")
    runs = find_runs([str(root)])
    assert len(runs) == 6 and [s.label for s in group(runs)["arith", "", "amd-avx2-2c"]] == ["grpo", "ppo", "rapid (A=4)"]
    doc = build_report(runs, tmp_path, [str(root)], plots=False)
    # no target fixed before the runs: the best baseline's final mean (grpo 0.5, not ppo 0.4), flagged
    assert "Target: pass@1 = 0.500, CHOSEN AFTER THE RUNS: the best baseline's final mean pass@1 (grpo)" in doc
    acc, paired, pairs, phases = tables(doc)
    # final accuracy: rapid 0.6 and 0.55 -> mean 0.575, sample std 0.035
    assert acc["rapid (A=4)"]["pass@1 final"] == "0.575 ± 0.035" and acc["grpo"]["pass@1 final"] == "0.500 ± 0.000"
    assert acc["rapid (A=4)"]["pass@4 final"] == "1.000 ± 0.000" and acc["ppo"]["seeds"] == "2"
    assert acc["grpo"]["peak RSS GiB"] == "2.00" and acc["grpo"]["s / step"] == "9.6"
    # rapid reaches 0.5 at 50 s (seed 0) and 50 + 0.05/0.1 * 50 = 75 s (seed 1); grpo at 100 s on both:
    # paired ratios 0.5 and 0.75, geometric mean sqrt(0.375) = 0.61; with two seeds the t interval
    # is mean log +- t(1) * |log 0.5 - log 0.75| / 2 = -0.490 +- 12.706 * 0.203: [0.05, 8.05];
    # final pass@1 differences 0.1 and 0.05: 0.075 +- 12.706 * 0.025 = [-0.243, +0.393]
    time_col, diff_col = "time to target / grpo's [95% CI]", "final pass@1 - baseline's [95% CI]"
    r, p = paired["rapid (A=4)"], paired["ppo"]
    assert r["paired seeds"] == "2" and r["reached target (setting / grpo)"] == "2 / 2"
    assert r[time_col] == "0.61 [0.05, 8.05]" and r[diff_col] == "+0.075 [-0.243, +0.393]"
    # ppo never reaches 0.5: censored at its whole training time, 96 s of grpo's 100 s, a lower bound
    assert p["reached target (setting / grpo)"] == "0 / 2" and p[time_col] == "0.96 [0.96, 0.96]"
    # the null: grpo's seed 0 against its seed 1, one pair, no interval
    nl = paired["null: grpo vs itself (seeds split in halves)"]
    assert nl["paired seeds"] == "1" and nl[time_col] == "1.00 (1 pair: no interval)"
    # the pairs behind those ratios, seed by seed: time (ratio to grpo's on that seed) -> final pass@1
    assert pairs["0"] == {"seed": "0", "grpo": "100 s -> 0.500", "ppo": "96* s (0.96x) -> 0.400",
                          "rapid (A=4)": "50 s (0.50x) -> 0.600"}
    assert pairs["1"]["rapid (A=4)"] == "75 s (0.75x) -> 0.550"
    # phases 30 + 1 + 2 + 60, plus 3 s of loop overhead = 96 s of training wall-clock
    ph = phases["grpo"]
    assert [ph[k] for k in ("generation s", "grading s", "weight sync s", "training s", "other s", "train wall s")] == \
        ["30", "1", "2", "60", "3", "96"]
    assert ph["gen share"] == "31%" and ph["train share"] == "62%" and ph["eval s (off clock)"] == "12"
    # --target and --baseline: grpo reaches 0.4 at 50 s, ppo at 100 s
    doc = build_report(runs, tmp_path, [str(root)], target=0.4, baseline="ppo", plots=False)
    assert "Target: pass@1 = 0.400, given with --target" in doc
    assert tables(doc)[1]["grpo"]["time to target / ppo's [95% CI]"] == "0.50 [0.50, 0.50]"


def test_the_null_pairs_the_baseline_with_its_replicate_by_base_seed(tmp_path):
    root = make_runs(tmp_path / "runs")
    for seed, t in ((0, 80.0), (1, 125.0)):  # the replicate reaches 0.5 at 80 s and 125 s; grpo at 100 s on both
        d = fake_run(root, "grpo-replica1", 10_000 + seed, [(0.0, 0.3), (t, 0.5), (130.0, 0.55)])
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "label": "grpo [replica 1]", "replica_of": "grpo",
                                                   "pair_seed": seed}))
        summary = json.loads((d / "summary.json").read_text())
        (d / "summary.json").write_text(json.dumps({**summary, "algo": "grpo"}))
    _, paired, pairs, *_ = tables(build_report(find_runs([str(root)]), tmp_path, [str(root)], target=0.5,
                                               plots=False))
    assert "grpo [replica 1]" not in paired  # it is the null row, not a setting under test
    # ... and in the per-seed table its runs sit on the rows of the seeds they are paired by
    assert pairs["0"]["grpo [replica 1]"] == "80 s (0.80x) -> 0.550" and "10000" not in pairs
    nl = paired["null: grpo [replica 1] vs grpo (other seeds)"]
    # paired by base seed: 80/100 and 125/100, geometric mean sqrt(1.0) = 1.00, interval
    # exp(+-t(1) * log 1.25) = exp(+-2.835): [0.06, 17.04]
    assert nl["paired seeds"] == "2" and nl["time to target / grpo's [95% CI]"] == "1.00 [0.06, 17.04]"


def test_a_target_recorded_in_the_runs_is_used_and_called_fixed(tmp_path):
    root = make_runs(tmp_path / "runs")
    for cfg in root.rglob("config.json"):
        c = json.loads(cfg.read_text())
        c["eval"]["target"] = 0.45
        cfg.write_text(json.dumps(c))
    doc = build_report(find_runs([str(root)]), tmp_path, [str(root)], plots=False)
    assert "Target: pass@1 = 0.450, fixed before the runs" in doc and "time ratio against the generation share" in doc
    # --target at the value the runs were started with is fixed; another is one chosen after them
    from rapidbench.report import choose_target

    settings = [s for ss in group(find_runs([str(root)])).values() for s in ss]
    assert choose_target(settings, "rapid", 0.45)[2] is True
    tgt, why, fixed = choose_target(settings, "rapid", 0.5)
    assert (tgt, fixed) == (0.5, False) and why.startswith("GIVEN AFTER THE RUNS") and "eval.target 0.45" in why
    doc = build_report(find_runs([str(root)]), tmp_path, [str(root)], target=0.5, plots=False)
    assert "Target: pass@1 = 0.500, GIVEN AFTER THE RUNS" in doc and "time ratio against the generation share" not in doc


def test_report_is_deterministic_and_writes_plots(tmp_path):
    outs = []
    for name in ("a", "b"):
        d = tmp_path / name
        make_runs(d / "runs")
        r = subprocess.run([sys.executable, "-m", "rapidbench", "report", "runs"], cwd=d, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(d / "runs")
    files = sorted(p.name for p in outs[0].iterdir() if p.is_file())
    assert files == ["README.md", "arith-amd-avx2-2c_accuracy.png", "arith-amd-avx2-2c_phases.png",
                     "arith-amd-avx2-2c_reward.png"]
    for f in files:  # the same runs give the same bytes, tables and PNGs alike
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_benchmark_headlines_are_tabled_and_a_superseded_one_says_so(tmp_path):
    root = make_runs(tmp_path / "runs")
    bench = tmp_path / "bench" / "some-tag"
    bench.mkdir(parents=True)
    head = {"name": "time ratio", "value": 0.86, "how": "3 seeds", "target": "<= 0.60", "met": "no"}
    (bench / "new.json").write_text(json.dumps({"headline": head}))
    (bench / "old.json").write_text(json.dumps({"headline": {**head, "superseded": "target chosen after the runs"}}))
    (bench / "raw.json").write_text(json.dumps({"rows": []}))  # no headline: no row
    doc = build_report(find_runs([str(root)]), tmp_path, [str(root)], plots=False)
    rows = [line for line in doc.splitlines() if line.startswith("| [")]
    assert len(rows) == 2 and "[new](bench/some-tag/new.json)" in rows[0] and "[old](bench/some-tag/old.json)" in rows[1]
    assert "SUPERSEDED" not in rows[0] and "SUPERSEDED (target chosen after the runs): time ratio" in rows[1]


def test_committed_results_regenerate_exactly(tmp_path):
    """`rapidbench report results/` on the committed runs reproduces the committed README byte for byte."""
    committed = ROOT / "results" / "README.md"
    assert committed.is_file() and find_runs([str(ROOT / "results" / "runs")]), "no committed reference results"
    shutil.copytree(ROOT / "results", tmp_path / "results", ignore=shutil.ignore_patterns("*.png", "README.md"))
    r = subprocess.run([sys.executable, "-m", "rapidbench", "report", "results/"], cwd=tmp_path, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "results" / "README.md").read_text() == committed.read_text()
    for png in (ROOT / "results").glob("*.png"):
        assert (tmp_path / "results" / png.name).is_file()


def rb(*args, **kw):
    kw.setdefault("timeout", 600)
    return subprocess.run([sys.executable, "-m", "rapidbench", *args], capture_output=True, text=True, **kw)


def test_report_and_compare_bad_input_is_one_line(tmp_path):
    r = rb("report", str(tmp_path))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"rapidbench: error: no finished runs (directories with summary.json) under {tmp_path}"]
    out = tmp_path / "cmp"
    for args, needle in ((["--algos", "rapid,nope"], "registered algorithms: dapo, grpo, pg, ppo, rapid"),
                         (["--algos", "rapid:A"], "expected NAME:key=value"),
                         (["--algos", "grpo:replica=0"], "replica is a positive integer"),
                         (["--algos", "rapid", "algo_args.nope=1"], "unknown key algo_args.nope"),
                         (["--algos", "rapid", "--preset", "nope"], "unknown preset 'nope'")):
        r = rb("compare", "--task", "arith", "--time-budget", "10", "--output", str(out), *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert not out.exists()  # nothing started, nothing written


def test_a_comparison_plan_grows_per_setting_and_never_shrinks():
    from rapidbench.compare import grow_plan, planned_seeds

    # a record from before per-setting plans planned every seed for every setting
    legacy = {"algos": ["grpo", "rapid-steps_per_generation2", "ppo"], "seeds": [0, 1, 2]}
    assert planned_seeds(legacy) == {"grpo": [0, 1, 2], "rapid-steps_per_generation2": [0, 1, 2], "ppo": [0, 1, 2]}
    assert planned_seeds({}) == {}
    # more seeds for the headline and GRPO alone; a later call asking for fewer takes nothing away
    grown = grow_plan(planned_seeds(legacy), {"grpo": [3, 4], "rapid-steps_per_generation2": [4, 3]})
    assert grown == {"grpo": [0, 1, 2, 3, 4], "rapid-steps_per_generation2": [0, 1, 2, 3, 4], "ppo": [0, 1, 2]}
    assert grow_plan(grown, {"ppo": [0], "pg": [1]}) == {**grown, "pg": [1]}
    assert planned_seeds({"plan": grown, "algos": ["x"], "seeds": [9]}) == grown  # the per-setting plan wins


def test_a_grown_plan_is_on_record_before_its_first_run(tmp_path):
    """A later call that adds seeds writes its plan and order before it starts the first new run, so
    a sweep stopped part-way (killed between sessions) has declared what it set out to run. The
    launcher here is a stand-in for the run: it keeps compare.json as it was when the run started."""
    from rapidbench.compare import compare, parse_settings
    from rapidbench.harness import machine_info

    root = tmp_path / "runs"
    fake_run(root, "grpo", 0, [(0.0, 0.3), (50.0, 0.5)], machine=machine_info())
    (root / "compare.json").write_text(json.dumps({"task": "arith", "plan": {"grpo": [0]}, "order": ["grpo/seed0"],
                                                   "redone": [], "elapsed_s": 120.0}))
    seen = tmp_path / "seen.json"
    launcher = f"sh -c 'cp {root / 'compare.json'} {seen}; exit 3' --"
    rc = compare("arith", parse_settings("grpo"), [0, 1], 60.0, root, preset="", launcher=launcher)
    assert rc != 0  # the stand-in run failed, after the record was written
    record = json.loads(seen.read_text())
    assert record["plan"] == {"grpo": [0, 1]} and record["order"] == ["grpo/seed0", "grpo/seed1"]
    assert record["elapsed_s"] == 120.0  # time spent by earlier calls is kept, none added yet


def test_compare_plan_skips_finished_and_resumes_started(tmp_path):
    from rapidbench.compare import is_seed_dirname, parse_settings, plan, run_command

    settings = parse_settings("rapid,grpo,rapid:steps_per_generation=8")
    todo = plan(settings, [0, 1, 2, 3], tmp_path)
    # seed by seed, every setting once per seed, in an order shuffled by the seed (recorded, reproducible)
    blocks = [[s.dirname for s, seed, _ in todo if seed == k] for k in range(4)]
    assert all(sorted(b) == sorted(s.dirname for s in settings) for b in blocks)
    assert len({tuple(b) for b in blocks}) > 1 and [x[:2] for x in plan(settings, [0, 1, 2, 3], tmp_path)] == [x[:2] for x in todo]
    s, seed, out = next(x for x in todo if x[0].dirname == "rapid-steps_per_generation8" and x[1] == 0)
    assert out == tmp_path / "rapid-steps_per_generation8" / "seed0"
    # every directory it plans is one the report reads as a comparison's run (runs.group); nothing else is
    assert all(is_seed_dirname(o.name) for _, _, o in todo)
    assert not any(map(is_seed_dirname, ("seed07", "seed", "grpo-20261207", "seed1x")))
    # the null's replicate: GRPO again under seed + 10000, paired by the report with GRPO's seed
    (rep,) = parse_settings("grpo:replica=1")
    rs, rseed, rout = next(x for x in plan([rep], [3], tmp_path))
    assert (rep.label, rout) == ("grpo [replica 1]", tmp_path / "grpo-replica1" / "seed10003")
    rcmd = run_command(rs, rseed, rout, "arith", 60.0, None, 20.0, [])
    assert rcmd[rcmd.index("--seed") + 1] == "10003" and "pair_seed=3" in rcmd and "replica_of=grpo" in rcmd
    cmd = run_command(s, seed, out, "arith", 60.0, None, 20.0, ["eval.num_problems=8"], target=0.7)
    assert cmd[3:] == ["run", "--algo", "rapid", "--task", "arith", "--seed", "0", "--time-budget", "60.0", "--output",
                       str(out), "--preset", "rapid-cpu", "eval.every_seconds=20.0", "eval.every_steps=0",
                       "algo_args.steps_per_generation=8", "label=rapid (A=8)", "eval.num_problems=8", "eval.target=0.7"]
    # a preset family: each algorithm's own file where it exists; through a launcher, launchers/run.py
    gpu = run_command(s, seed, out, "mbpp", 60.0, "{algo}-paper-gpu", 20.0, [], launcher="deepspeed --num_gpus 4")
    assert gpu[:4] == [str(Path(sys.executable).parent / "deepspeed"), "--num_gpus", "4", str(ROOT / "launchers" / "run.py")]
    assert gpu[gpu.index("--preset") + 1] == "rapid-paper-gpu"
    assert "--preset" not in run_command(s, seed, out, "arith", 60.0, "", 20.0, [])  # '' = no preset
    out.mkdir(parents=True)
    (out / "config.json").write_text("{}")  # started, not finished: continue it
    assert run_command(s, seed, out, "arith", 60.0, None, 20.0, [])[3:] == ["run", "--resume", str(out)]
    from rapidbench.harness import machine_info

    fake_run(tmp_path, "grpo", 0, [(0.0, 0.3)], machine=machine_info())
    (tmp_path / "compare.json").write_text(json.dumps({"target": 0.6, "elapsed_s": 123.0}))
    r = rb("compare", "--task", "arith", "--algos", "grpo", "--seeds", "1", "--time-budget", "60",
           "--output", str(tmp_path))
    assert r.returncode == 0 and "done before, skipped" in r.stderr
    assert json.loads((tmp_path / "compare.json").read_text()) == {"target": 0.6, "elapsed_s": 123.0}  # nothing ran
    r = rb("compare", "--task", "arith", "--algos", "grpo", "--seeds", "1", "--time-budget", "60", "--target", "0.7",
           "--output", str(tmp_path))  # a target is fixed before the runs: not changed half way
    assert r.returncode == 2 and "started with --target 0.6" in r.stderr


def test_runs_of_one_task_in_two_regimes_are_two_comparisons(tmp_path):
    """The long-completion presets ({algo}-cpu-long) run the same task with other options: their runs
    get their own section and plots, the default presets' keep the plain title."""
    make_runs(tmp_path / "short")
    for algo in ("grpo", "rapid"):
        d = fake_run(tmp_path / "long", algo, 0, [(0.0, 0.1), (100.0, 0.3)], a=4 if algo == "rapid" else None)
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "preset": f"{algo}-cpu-long"}))
    runs = find_runs([str(tmp_path)])
    assert list(group(runs)) == [("arith", "", "amd-avx2-2c"), ("arith", "cpu-long", "amd-avx2-2c")]
    assert "time ratio against the generation share" not in build_report(runs, tmp_path, [str(tmp_path)], plots=False)
    doc = build_report(runs, tmp_path, [str(tmp_path)], target=0.5, plots=True)  # only fixed targets: given here
    assert "## arith on amd-avx2-2c" in doc and "## arith (cpu-long) on amd-avx2-2c" in doc
    assert (tmp_path / "arith-cpu-long-amd-avx2-2c_accuracy.png").is_file() and (tmp_path / "arith-amd-avx2-2c_accuracy.png").is_file()
    # RAPID's ratio beside the baseline's per-generation share, one row per comparison: (30 + 1 + 2) / 96 s
    regimes = doc.split("## rapid's time ratio against the generation share")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in regimes.splitlines() if line.startswith("| ")]
    assert [r[:4] for r in rows[1:]] == [["arith on amd-avx2-2c", "34%", "rapid (A=4)", "2"],
                                         ["arith (cpu-long) on amd-avx2-2c", "34%", "rapid (A=4)", "1"]]


def test_runs_with_task_options_beyond_their_preset_are_another_comparison(tmp_path):
    """`compare ... task_args.run_on_credit=false` grades otherwise: its runs (same labels, same seeds)
    get their own section titled by the option, never a second run of a seed in the preset's table.
    A run's config that says what its preset gives, or lacks an option added since, stays untagged."""
    from rapidbench.runs import task_overrides

    def count_run(root: Path, algo: str, **task_args) -> None:
        d = fake_run(root, algo, 0, [(0.0, 0.1), (100.0, 0.6)])
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "task": "count", "preset": f"{algo}-cpu-long",
                                                   "task_args": {"lengths": [30, 40], **task_args}}))
        (d / "summary.json").write_text(json.dumps({**json.loads((d / "summary.json").read_text()), "task": "count"}))

    count_run(tmp_path / "sweep", "grpo", run_on_credit=True)
    count_run(tmp_path / "sweep", "rapid")  # before the option existed (one comparison: one directory)
    count_run(tmp_path / "check", "grpo", run_on_credit=False)
    assert task_overrides({"task": "count", "preset": "grpo-cpu-long", "task_args": {"lengths": [30, 41], "gone": 1}}) \
        == ("lengths=[30, 41]",)
    assert task_overrides({"task": "count", "preset": "", "task_args": {"run_on_credit": False}}) == ("run_on_credit=false",)
    assert task_overrides({"task": "arith", "preset": "grpo-cpu-long", "task_args": {"ops": ["+"]}}) == ()  # preset changed task
    runs = find_runs([str(tmp_path)])
    assert {k: [s.label for s in v] for k, v in group(runs).items()} == {
        ("count", "cpu-long", "amd-avx2-2c"): ["grpo", "rapid"],
        ("count", "cpu-long, run_on_credit=false", "amd-avx2-2c"): ["grpo"]}
    doc = build_report(runs, tmp_path, [str(tmp_path)], target=0.5, plots=True)
    assert "## count (cpu-long, run_on_credit=false) on amd-avx2-2c" in doc
    assert (tmp_path / "count-cpu-long-run_on_credit-false-amd-avx2-2c_accuracy.png").is_file()


def test_runs_of_different_machines_are_kept_apart(tmp_path):
    """Wall-clock curves from two kinds of machine never share a table, and compare will not mix them."""
    from rapidbench.harness import hardware_tag, machine_info

    other = {**AMD, "cpu": "Some Other CPU", "cores": 64}  # a machine this one is not
    make_runs(tmp_path / "a")
    fake_run(tmp_path / "b", "grpo", 0, [(0.0, 0.3), (10.0, 0.9)], machine=other)
    runs = find_runs([str(tmp_path)])
    assert list(group(runs)) == [("arith", "", "amd-avx2-2c"), ("arith", "", "cpu-avx2-64c")]
    doc = build_report(runs, tmp_path, [str(tmp_path)], plots=False)
    assert "## arith on amd-avx2-2c" in doc and "## arith on cpu-avx2-64c" in doc
    assert "Machine: AMD EPYC, 2 cores, AVX2, Python 3.11.7. Trainer dtype float32." in doc
    # grpo's 0.9 on the other machine is not the amd section's target
    assert "Target: pass@1 = 0.500, CHOSEN AFTER THE RUNS: the best baseline's final mean pass@1 (grpo)" in doc
    r = rb("compare", "--task", "arith", "--algos", "grpo", "--seeds", "1", "--time-budget", "60",
           "--output", str(tmp_path / "b"))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"rapidbench: error: {tmp_path / 'b' / 'grpo' / 'seed0'} was run on cpu-avx2-64c (Some Other CPU), this "
        f"machine is {hardware_tag()} ({machine_info()['cpu']}); their wall-clock times do not compare: "
        "pass another --output"]


def test_compare_then_report_end_to_end(tmp_path):
    """Two real (tiny) runs through `compare`, then `report` over them."""

    def compare():
        return rb("compare", "--task", "arith", "--algos", "grpo,rapid:steps_per_generation=2", "--seeds", "1",
                  "--time-budget", "3", "--eval-every", "1", "--output", str(tmp_path / "runs"), "--preset", "",
                  "model=tiny-random", "sampler=hf", "max_steps=2", "progress=false", "generation.max_new_tokens=8",
                  "eval.num_problems=4", "eval.n_samples=2", "eval.k=[1,2]", "algo_args.group_size=2",
                  "algo_args.prompts_per_step=2", timeout=1200)

    r = compare()
    assert r.returncode == 0, r.stderr[-3000:]
    for d in ("grpo/seed0", "rapid-steps_per_generation2/seed0"):
        assert (tmp_path / "runs" / d / "summary.json").is_file()
        assert not (tmp_path / "runs" / d / "checkpoints").exists()  # a finished run's checkpoints are dropped
    record = json.loads((tmp_path / "runs" / "compare.json").read_text())
    assert record["algos"] == ["grpo", "rapid-steps_per_generation2"]
    assert record["plan"] == {"grpo": [0], "rapid-steps_per_generation2": [0]} and len(record["order"]) == 2
    r = rb("report", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    from rapidbench.harness import hardware_tag

    assert "rapid (A=2)" in r.stdout and (tmp_path / "runs" / f"arith-{hardware_tag()}_accuracy.png").is_file()
    # a finished run something else ran beside (its load record says so) is set aside and run again
    done = tmp_path / "runs" / "grpo" / "seed0" / "summary.json"
    summary = json.loads(done.read_text())
    load = summary["load"]
    done.write_text(json.dumps({**summary, "load": {**load, "busy_s": load["cpu_s"] + load["wall_s"]}}))  # 1 core of others
    r = compare()
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "compare.json").read_text())
    redone = record["redone"]
    assert record["plan"] == {"grpo": [0], "rapid-steps_per_generation2": [0]} and len(record["order"]) == 2
    assert {"run": "grpo/seed0", "reason": "other processes used 1.00 cores > 0.1",
            "set_aside": ".disturbed/grpo-seed0"} in redone
    assert (tmp_path / "runs" / ".disturbed" / "grpo-seed0" / "summary.json").is_file() and done.is_file()
    assert not (tmp_path / "runs" / ".disturbed" / "grpo-seed0" / "checkpoints").exists()
    assert "done before, skipped" in r.stderr  # the undisturbed rapid run stays
    assert len(find_runs([str(tmp_path / "runs")])) == 2  # the set-aside run is out of every table


def test_benchmark_headlines_are_listed_per_machine(tmp_path):
    root = make_runs(tmp_path / "runs")
    for tag, value in (("amd-avx2-2c", 1.68), ("intel-avx512bf16-2c", 3.2)):
        (tmp_path / "bench" / tag).mkdir(parents=True)
        (tmp_path / "bench" / tag / "sampler_throughput.json").write_text(json.dumps({"headline": {
            "name": "vllm / hf", "value": value, "how": "side by side", "target": ">= 3", "met": "yes" if value >= 3 else "no"}}))
    (tmp_path / "bench" / "amd-avx2-2c" / "other.json").write_text(json.dumps({"rows": []}))  # no headline: no row
    doc = build_report(find_runs([str(root)]), tmp_path, [str(root)], plots=False)
    bench = doc[doc.index("## Benchmarks"):]
    assert bench.index("### on amd-avx2-2c") < bench.index("### on intel-avx512bf16-2c")
    t = tables(bench)
    assert len(t) == 2 and t[0]["[sampler_throughput](bench/amd-avx2-2c/sampler_throughput.json)"]["met"] == "no"
    assert t[1]["[sampler_throughput](bench/intel-avx512bf16-2c/sampler_throughput.json)"]["value"] == "3.2"


def test_a_pilot_with_another_budget_is_its_own_section(tmp_path):
    """A pilot run (other training budget) beside a sweep's runs is not paired with them: where
    budgets meet, each budget is a section; a lone budget keeps the plain title."""
    make_runs(tmp_path / "sweep")
    d = fake_run(tmp_path / "pilot", "grpo", 900, [(0.0, 0.1), (300.0, 0.9)])
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "time_budget": 360.0}))
    sweep_budget = {r.config.get("time_budget") or 0 for r in find_runs([str(tmp_path / "sweep")])}
    assert 360.0 not in sweep_budget
    runs = find_runs([str(tmp_path)])
    keys = list(group(runs))
    b = f"{sweep_budget.pop():g}"
    assert keys == sorted([("arith", f"{b} s", "amd-avx2-2c"), ("arith", "360 s", "amd-avx2-2c")])
    pilot = group(runs)["arith", "360 s", "amd-avx2-2c"]
    assert [s.label for s in pilot] == ["grpo"] and pilot[0].section == "arith (360 s budget) on amd-avx2-2c"
    assert pilot[0].stem == "arith-360s-amd-avx2-2c"
    assert list(group(find_runs([str(tmp_path / "sweep")]))) == [("arith", "", "amd-avx2-2c")]


def test_a_check_with_the_same_budget_beside_its_sweep_is_its_own_section(tmp_path):
    """A one-seed check run under its own comparison directory, with the sweep's budget, is not
    paired with the sweep's runs: each directory is then a section; a lone directory keeps the plain title."""
    make_runs(tmp_path / "sweep")
    fake_run(tmp_path / "check", "grpo", 5, [(0.0, 0.1), (300.0, 0.9)])
    runs = find_runs([str(tmp_path)])
    assert {r.config.get("time_budget") for r in runs if r.path.parent.parent.name == "check"} == \
        {r.config.get("time_budget") for r in runs if r.path.parent.parent.name == "sweep"}
    sections = group(runs)
    assert list(sections) == [("arith", "check", "amd-avx2-2c"), ("arith", "sweep", "amd-avx2-2c")]
    check = sections["arith", "check", "amd-avx2-2c"]
    assert [(s.label, [r.seed for r in s.runs]) for s in check] == [("grpo", [5])]
    assert check[0].section == "arith (check) on amd-avx2-2c" and check[0].stem == "arith-check-amd-avx2-2c"
    assert all(r.path.parent.parent.name == "sweep" for s in sections["arith", "sweep", "amd-avx2-2c"] for r in s.runs)
    assert list(group(find_runs([str(tmp_path / "sweep")]))) == [("arith", "", "amd-avx2-2c")]
    # runs made by hand (make demo's <dir>/<algo>-<time>, not compare's <root>/<setting>/seed<N>) share one
    # (at any depth: what holds a hand-made run's directory is no comparison)
    for where, algo in ((tmp_path / "demo" / "a", "grpo"), (tmp_path / "demo", "rapid")):
        where.mkdir(parents=True, exist_ok=True)
        fake_run(tmp_path / "made", algo, 0, [(0.0, 0.1), (300.0, 0.9)]).rename(where / f"{algo}-20261207")
    assert [[s.label for s in v] for v in group(find_runs([str(tmp_path / "demo")])).values()] == [["grpo", "rapid"]]


def test_reading_a_sweep_before_its_headline_has_a_run_says_so_in_one_line(tmp_path):
    """time_to_accuracy --no-run on a sweep stopped before the headline's first run finished: one line
    naming what is missing and the fix (it used to fail with StopIteration), and nothing written."""
    for seed in (0, 1):
        fake_run(tmp_path, "grpo", seed, [(0.0, 0.3), (100.0, 0.6)])
    before = sorted(p for p in tmp_path.rglob("*"))
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "time_to_accuracy.py"), "--no-run", "--output",
                        str(tmp_path), "--seeds", "2", "--headline-seeds", "2", "--algos",
                        "grpo,rapid:steps_per_generation=2"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (f"time_to_accuracy: no finished run of rapid (A=2) under {tmp_path} "
                                                 "yet; run the sweep on (the same command without --no-run) before reading it")
    assert "left out of every pair: {'rapid (A=2)': [0, 1]}" in r.stdout
    assert sorted(p for p in tmp_path.rglob("*")) == before
