"""The cost model on synthetic calibration data with known coefficients."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rapidbench.costmodel import Calibration, Setting, best_A, fit, share, speedup, step_parts, step_seconds

TRUE = Calibration(g0=0.3, g1=0.01, g2=0.002, g3=0.0001, t0=0.2, t1=0.0015, p1=0.0005, r1=0.001, s0=0.4)


def synthetic():
    c = TRUE
    gen = [(N, L, 45.0, c.g0 + c.g1 * L + c.g2 * N * L + c.g3 * N * 45.0) for N in (4, 16, 64) for L in (16, 64, 192)]
    train = [(n, T, c.t0 + c.t1 * n * T) for n in (8, 16) for T in (60, 110, 240)]
    passes = [(n, T, c.p1 * n * T) for n in (16, 32) for T in (60, 240)]
    grade = [(N, c.r1 * N) for N in (16, 64)]
    return gen, train, passes, grade, [0.4, 0.41, 0.39]


def test_fit_recovers_known_coefficients():
    cal = fit(*synthetic())
    for k in ("g0", "g1", "g2", "g3", "t0", "t1", "p1", "r1", "s0"):
        assert getattr(cal, k) == pytest.approx(getattr(TRUE, k), rel=1e-6, abs=1e-9), k


def test_step_cost_by_hand():
    s = Setting(A=4, B=4, G=4, P=45, L=20)
    parts = step_parts(TRUE, s)
    n = 64  # 4 x 4 x 4 sequences in one generation
    assert parts["gen_s"] == pytest.approx((0.3 + 0.01 * 20 + 0.002 * n * 20 + 0.0001 * n * 45) / 4)
    assert parts["pass_s"] == pytest.approx(3 * 16 * 65 * 0.0005 / 4)  # the 3 later mini-batches' rows
    assert parts["train_s"] == pytest.approx(0.2 + 0.0015 * 16 * 65)
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
                        "--completion-tokens", "144"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "speed-up vs A=1" in r.stdout and "RAPID's ceiling" in r.stdout
    r = subprocess.run([sys.executable, "-m", "rapidbench", "predict", "--calibration", str(tmp_path / "none.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "benchmarks/cost_model.py" in r.stderr
