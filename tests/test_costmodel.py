"""The cost model on synthetic calibration data with known coefficients."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rapidbench.costmodel import (Calibration, Setting, best_A, fit, observations, share, speedup, step_parts,
                                  step_seconds)

TRUE = Calibration(g0=0.3, g1=0.01, g2=0.002, g3=0.0001, t0=0.2, t1=0.0015, t2=0.0008, p1=0.0005, r1=0.001,
                   s0=0.4)


def synthetic():
    """Observations as short runs give them: every generation's own mean and longest completion,
    steps that book a pi_old pass and steps that do not."""
    c = TRUE
    gen = [(N, L, Lm, P, c.g0 + c.g1 * Lm + c.g2 * N * L + c.g3 * N * P)
           for N, P in ((16, 45.0), (64, 60.0)) for L, Lm in ((16, 40), (20, 48), (140, 192), (150, 192))]
    train = [(n, P, L, Lm, k, c.t0 + c.t1 * n * (P + L) + c.t2 * n * (Lm - L) + c.p1 * k * (P + L))
             for n, P in ((16, 45.0), (8, 60.0)) for L, Lm in ((16, 40), (25, 30), (140, 192)) for k in (0, 48)]
    grade = [(N, c.r1 * N) for N in (16, 64)]
    return gen, train, grade, [0.4, 0.41, 0.39]


def test_fit_recovers_known_coefficients():
    cal = fit(*synthetic())
    for k in ("g0", "g1", "g2", "g3", "t0", "t1", "t2", "p1", "r1", "s0"):
        assert getattr(cal, k) == pytest.approx(getattr(TRUE, k), rel=1e-6, abs=1e-9), k


def test_fit_keeps_costs_non_negative_at_the_best_such_fit():
    """Data on which free least squares gives a negative cost: the fit is the non-negative least-
    squares optimum (its KKT conditions: zero gradient along every positive coefficient, a gradient
    that only rises along every coefficient held at 0)."""
    gen, train, grade, sync = synthetic()
    gen = [(N, L, Lm, P, 0.001 * N * L - (0.02 * Lm if N == 64 else 0.0)) for N, L, Lm, P, _ in gen]
    X = np.array([[1.0, Lm, N * L, N * P] for N, L, Lm, P, _ in gen])
    y = np.array([t for *_, t in gen])
    assert np.linalg.lstsq(X, y, rcond=None)[0].min() < 0  # the case the constraint is for
    cal = fit(gen, train, grade, sync)
    c = np.array([cal.g0, cal.g1, cal.g2, cal.g3])
    grad = X.T @ (X @ c - y)
    assert (c >= 0).all() and (c == 0).any()
    scale = np.abs(X.T @ y).max()
    for ci, gi in zip(c, grad):
        assert (abs(gi) < 1e-9 * scale) if ci > 0 else (gi > -1e-9 * scale)


def synthetic_run(A: int, P: float, lengths: list[tuple[float, float]], c: Calibration = TRUE):
    """config and metrics.jsonl rows, as the runner writes them, of a run whose every phase costs
    exactly what `c` says: generation g has mean and longest completion lengths[g]."""
    B, G = 4, 4
    config = {"algo_args": {"steps_per_generation": A, "prompts_per_step": B, "group_size": G}}
    rows = []
    for g, (L, Lm) in enumerate(lengths):
        parts = step_parts(c, Setting(A, B, G, P, L, True, Lm))
        for j in range(A):
            rows.append({"generation": g, "samples": B * G,
                         "gen_s": parts["gen_s"] * A if j == 0 else 0.0, "grade_s": parts["grade_s"] * A if j == 0 else 0.0,
                         "tokens": A * B * G * L if j == 0 else 0, "longest": Lm if j == 0 else 0,
                         "sync_s": c.s0 if j == A - 1 else 0.0,
                         "fwd_per_sample": 1 + (A - 1) if j == 0 else 1.0,  # the pass over the later steps' rows
                         "train_s": parts["train_s"] + (parts["pass_s"] * A if j == 0 else 0.0)})
    return config, rows


def test_observations_of_runs_refit_the_costs_that_made_them():
    """The runner's metrics conventions (tokens and longest on a generation's first step, the pi_old
    pass booked on it, sync on its last) read back into observations that refit the coefficients;
    the first generation (warm-up) is left out."""
    obs = {"gen": [], "train": [], "grade": [], "sync": []}
    for A, P, lengths in ((1, 45.0, [(99, 99), (16, 40), (20, 48), (18, 30)]), (4, 45.0, [(99, 99), (17, 44), (22, 31)]),
                          (1, 60.0, [(99, 99), (140, 192), (150, 192)]), (4, 60.0, [(99, 99), (145, 192), (130, 180)])):
        got = observations(*synthetic_run(A, P, lengths), P)
        assert all(o[1] != 99 for o in got["gen"])  # generation 0 skipped
        assert len(got["train"]) == A * (len(lengths) - 1) and len(got["sync"]) == len(lengths) - 1
        for k in obs:
            obs[k] += got[k]
    assert {o[4] for o in obs["train"]} == {0, 48}  # pass rows: (A - 1) * B * G on a generation's first step
    cal = fit(obs["gen"], obs["train"], obs["grade"], obs["sync"])
    for k in ("g0", "g1", "g2", "g3", "t0", "t1", "t2", "p1", "r1", "s0"):
        assert getattr(cal, k) == pytest.approx(getattr(TRUE, k), rel=1e-6, abs=1e-9), k


def test_step_cost_by_hand():
    s = Setting(A=4, B=4, G=4, P=45, L=20)
    parts = step_parts(TRUE, s)
    n = 64  # 4 x 4 x 4 sequences in one generation
    assert parts["gen_s"] == pytest.approx((0.3 + 0.01 * 20 + 0.002 * n * 20 + 0.0001 * n * 45) / 4)
    assert parts["pass_s"] == pytest.approx(3 * 16 * 65 * 0.0005 / 4)  # the 3 later mini-batches' rows
    assert parts["train_s"] == pytest.approx(0.2 + 0.0015 * 16 * 65)
    # a generation waits for its longest completion, and the spread of lengths pads micro-batches
    spread = step_parts(TRUE, Setting(A=4, B=4, G=4, P=45, L=20, L_max=48))
    assert spread["gen_s"] - parts["gen_s"] == pytest.approx(0.01 * 28 / 4)
    assert spread["train_s"] - parts["train_s"] == pytest.approx(0.0008 * 16 * 28)
    assert step_seconds(TRUE, s) == pytest.approx(sum(parts.values()))
    # A = 1 pays the whole generation and sync each step, and no pass
    one = step_parts(TRUE, Setting(1, 4, 4, 45, 20))
    assert one["pass_s"] == 0 and speedup(TRUE, s) == pytest.approx(step_seconds(TRUE, Setting(1, 4, 4, 45, 20)) / step_seconds(TRUE, s))


def test_what_a_buys_depends_on_whether_decoding_is_bound_by_the_batch():
    """Longer completions raise generation's share either way; they raise RAPID's per-step gain only
    where a decode step costs about the same for a small batch as for a large one (a GPU's regime).
    Where decoding costs per sequence (TRUE: g2 large), the pi_old pass, which grows with L too,
    eats the gain."""
    from dataclasses import replace

    short, long = Setting(4, 4, 4, 45, 20), Setting(4, 4, 4, 60, 144)
    assert share(TRUE, long) > share(TRUE, short)
    assert speedup(TRUE, long) < speedup(TRUE, short)
    batch_free = replace(TRUE, g1=0.05, g2=0.0001)
    assert speedup(batch_free, long) > speedup(batch_free, short) > 1
    assert best_A(batch_free, long) == 16


def test_predict_cli(tmp_path):
    path = tmp_path / "cost_model.json"
    path.write_text(json.dumps({"calibration": TRUE.__dict__, "machine": "x"}))
    r = subprocess.run([sys.executable, "-m", "rapidbench", "predict", "--calibration", str(path), "--A", "1", "4",
                        "--completion-tokens", "144", "--longest-tokens", "192"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "speed-up vs A=1" in r.stdout and "RAPID's ceiling" in r.stdout and "longest=192" in r.stdout
    # decoding free of the batch: seconds per step fall with every A, so the largest is no optimum
    path.write_text(json.dumps({"calibration": {**TRUE.__dict__, "g1": 0.05, "g2": 0.0001}, "machine": "x"}))
    r = subprocess.run([sys.executable, "-m", "rapidbench", "predict", "--calibration", str(path), "--completion-tokens",
                        "144", "--prompt-tokens", "60"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "at A=16, the largest asked for" in r.stdout, r.stdout + r.stderr
    path.write_text(json.dumps({"calibration": TRUE.__dict__, "machine": "x"}))
    r = subprocess.run([sys.executable, "-m", "rapidbench", "predict", "--calibration", str(tmp_path / "none.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "benchmarks/cost_model.py" in r.stderr
    old = {k: v for k, v in TRUE.__dict__.items() if k != "t2"}  # a calibration from before the padding term
    path.write_text(json.dumps({"calibration": old}))
    r = subprocess.run([sys.executable, "-m", "rapidbench", "predict", "--calibration", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "lacks t2" in r.stderr and "re-run" in r.stderr, r.stderr


def test_check_by_setting_pools_a_settings_runs(benchmark_script):
    """benchmarks/cost_model.py's per-setting check: mean prediction over a setting's runs against its
    mean measured seconds per step, runs grouped by their directory's parent."""
    bench = benchmark_script("cost_model")
    rows = [{"run": "r/grpo/seed0", "predicted_s_per_step": 3.0, "measured_s_per_step": 2.5, "error": 0.2},
            {"run": "r/grpo/seed1", "predicted_s_per_step": 3.0, "measured_s_per_step": 3.5, "error": -0.143},
            {"run": "r/rapid/seed0", "predicted_s_per_step": 2.0, "measured_s_per_step": 1.6, "error": 0.25}]
    got = {s["setting"]: s for s in bench.by_setting(rows)}
    assert got["r/grpo"]["runs"] == 2 and got["r/grpo"]["error"] == 0.0  # 3.0 / mean(2.5, 3.5) - 1
    assert got["r/grpo"]["runs_error_range"] == [-0.143, 0.2]
    assert got["r/rapid"]["error"] == 0.25 and got["r/rapid"]["measured_s_per_step"] == 1.6


def test_check_describes_the_calibration_it_keeps(benchmark_script):
    """--check-only keeps a calibration fitted before the sixth run joined CALIBRATION_RUNS: the
    headline names the runs it was fitted on (its own record), not the list as it is now."""
    bench = benchmark_script("cost_model")
    kept = {"runs": [{"preset": p} for p, *_ in bench.CALIBRATION_RUNS[:5]], "gen": [0] * 21, "train": [0] * 36}
    assert len(bench.CALIBRATION_RUNS) > 5  # else the kept record would not differ from the list
    got = bench.fitted_on(kept)
    assert got.startswith("calibrated on 5 short runs") and "21 generations, 36 optimizer steps" in got
    assert got.endswith("grpo-cpu-long)")  # the fifth run's preset closes it; the sixth (rapid-cpu-long) absent
