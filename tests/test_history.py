"""A comparison in the order it ran (rapidbench.history): blocks cut by the gap between runs, the
host's readings per block, and the paired ratios as they stood after each block, by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from test_report import fake_run, tables

from rapidbench.history import blocks, history_table
from rapidbench.report import build_report, paired
from rapidbench.runs import find_runs, group
from rapidbench.stats import RunTime, time_ratio

T0 = datetime(2026, 1, 2, 10, 0, 0)


def stamp(d: Path, start: datetime | None, wall: float | None = 200.0, end: datetime | None = None,
          bf16: float = 1000.0, during: list[float] = (), bf16_end: float | None = None, steps: int | None = None) -> datetime:
    """Give a fake run a finishing time and a load record; -> when it finished."""
    s = json.loads((d / "summary.json").read_text())
    end = end or start + timedelta(seconds=wall)
    s["finished_at"] = end.isoformat(timespec="seconds")
    if wall is not None:
        s["load"] = {"wall_s": wall, "speed_start": {"bf16_gflops": bf16},
                     "speed_during": [{"bf16_gflops": x} for x in during],
                     **({"speed_end": {"bf16_gflops": bf16_end}} if bf16_end else {})}
    if steps:
        s["steps"] = steps
    (d / "summary.json").write_text(json.dumps(s))
    return end


def curve(t: float) -> list[tuple[float, float]]:
    """Reaches 0.5 at exactly t s (0.3 at 0, 0.5 at t, 0.6 at 100 s: the crossing is confirmed)."""
    return [(0.0, 0.3), (t, 0.5), (100.0, 0.6)]


def test_blocks_are_cut_where_a_run_starts_more_than_ten_minutes_after_the_last_finished(tmp_path):
    a = fake_run(tmp_path, "grpo", 0, curve(50))
    b = fake_run(tmp_path, "grpo", 1, curve(50))
    c = fake_run(tmp_path, "grpo", 2, curve(50))
    first = stamp(a, T0)  # finished 10:03:20
    # without a load record a run started train_wall_s + eval_s + ckpt_s = 96 + 12 + 1 = 109 s before it
    # finished: finishing at 10:15:08 it started at 10:13:19, 599 s after the last finish: the same block
    second = stamp(b, None, wall=None, end=first + timedelta(seconds=599 + 109))
    stamp(c, None, wall=None, end=second + timedelta(seconds=601 + 109))  # 601 s: a block of its own
    cut = blocks(find_runs([str(tmp_path)]))
    assert [[r.seed for r in blk] for blk in cut] == [[0, 1], [2]]


def make_history(root: Path) -> list:
    """grpo reaches 0.5 at 100 s on seeds 0-2, rapid at 50, 80, 40 s. Block 1 (10:00-10:10): grpo 0,
    rapid 0, grpo 1; block 2 from 10:40 (30 min later): rapid 1, grpo 2, then 5 min later rapid 2,
    whose end reading (700 < 0.75 x the median start 1000) calls it slowed."""
    t = T0
    plan = [("grpo", 0, 100.0), ("rapid", 0, 50.0), ("grpo", 1, 100.0), ("rapid", 1, 80.0), ("grpo", 2, 100.0),
            ("rapid", 2, 40.0)]
    for i, (algo, seed, when) in enumerate(plan):
        d = fake_run(root, algo, seed, curve(when) if algo == "rapid" else [(0.0, 0.3), (50.0, 0.4), (100.0, 0.5)],
                     a=4 if algo == "rapid" else None)
        t += timedelta(minutes={3: 30, 5: 5}.get(i, 0))
        t = stamp(d, t, during=[1000.0, 1200.0, 1100.0] if i == 0 else (), bf16_end=700.0 if i == 5 else None,
                  steps=20 if algo == "rapid" else None)
    return find_runs([str(root)])


def test_the_history_reads_each_block_then_the_ratios_over_the_pairs_complete_by_then(tmp_path):
    runs = make_history(tmp_path / "runs")
    settings = group(runs)["arith", "", "amd-avx2-2c"]
    grpo, rapid = settings
    rows = tables(history_table(settings, 0.5, grpo, "rapid"))[0]
    one, two = rows["1"], rows["2"]
    assert (one["runs"], one["started-finished"], two["runs"], two["started-finished"]) == \
        ("3", "01-02 10:00-10:10", "3", "01-02 10:40-10:55")
    # the probe: grpo 0's median reading during training (1100), the others' start reading (1000);
    # rapid 2 ended at 700, but its median of start and end is 850
    assert one["bf16 probe GFLOP/s"] == "1000-1100" and two["bf16 probe GFLOP/s"] == "850-1000"
    # 96 s of training over 10 steps (grpo) and 20 (rapid)
    assert (one["grpo s / step"], one["rapid (A=4) s / step"]) == ("9.6", "4.8")
    assert one["slowed"] == "none" and two["slowed"] == "rapid (A=4) 2"
    ratio, without = "rapid (A=4) / grpo (pairs)", "rapid (A=4) / grpo without slowed pairs"
    # after block 1 one pair (50 / 100 s); after block 2 three: the geometric mean of 0.5, 0.8 and 0.4
    # is 0.16 ** (1/3) = 0.54, the same reading as the whole comparison's; without rapid's slowed seed 2,
    # sqrt(0.5 * 0.8) = 0.63
    assert one[ratio] == "0.50 (1 pair: no interval)" and one[without] == "0.50 (1 pair: no interval)"
    full = paired(rapid, grpo, 0.5)[1]
    assert round(full.value, 4) == round(0.16 ** (1 / 3), 4) and two[ratio] == f"{full.fmt()} (3)"
    assert two[without].startswith("0.63 [") and two[without].endswith("(2)")
    # the null splits grpo's seeds in halves: seed 0 against seed 1 (both 100 s)
    assert one["null (pairs)"] == two["null (pairs)"] == "1.00 (1 pair: no interval)"
    # nothing slowed: no column without slowed pairs (it would repeat the one beside it)
    next(r for r in runs if r.label == "rapid (A=4)" and r.seed == 2).summary["load"].pop("speed_end")
    again = tables(history_table(settings, 0.5, grpo, "rapid"))[0]["2"]
    assert again["slowed"] == "none" and without not in again and again[ratio] == two[ratio]


def test_the_report_shows_the_history_only_for_a_comparison_made_in_blocks(tmp_path):
    runs = make_history(tmp_path / "runs")
    title = "### The comparison in the order it ran"
    doc = build_report(runs, tmp_path, ["runs"], target=0.5, plots=False)
    assert title in doc and "the time ratios to grpo over the pairs complete after the block" in doc
    grpo, rapid = group(runs)["arith", "", "amd-avx2-2c"]
    assert history_table([grpo, rapid], 0.5, grpo, "rapid")
    # one block (the second's runs alone), or a run that does not say when it finished: no history
    late = [r for r in runs if r.path.name != "seed0" and not (r.label == "grpo" and r.seed == 1)]
    assert title not in build_report(late, tmp_path, ["runs"], target=0.5, plots=False)
    del runs[0].summary["finished_at"]
    assert history_table([grpo, rapid], 0.5, grpo, "rapid") == ""


def test_a_ratio_over_no_pairs_is_no_number():
    e = time_ratio([], [])
    assert e.pairs == 0 and e.fmt() == "n/a (no pairs)"
    assert time_ratio([RunTime(50.0, False)], [RunTime(100.0, False)]).fmt() == "0.50 (1 pair: no interval)"


def test_the_history_names_each_blocks_machine_boot_where_runs_recorded_one(tmp_path):
    runs = make_history(tmp_path / "runs")
    settings = group(runs)["arith", "", "amd-avx2-2c"]
    assert "boot" not in tables(history_table(settings, 0.5, settings[0], "rapid"))[0]["1"]  # none recorded
    # block 1 on one boot; block 2 on another, but its first run (rapid 1) recorded none
    in_order = sorted(runs, key=lambda r: r.summary["finished_at"])
    for r in in_order[:3]:
        r.summary["machine"]["boot"] = "aaaa1111"
    for r in in_order[4:]:
        r.summary["machine"]["boot"] = "bbbb2222"
    rows = tables(history_table(settings, 0.5, settings[0], "rapid"))[0]
    assert rows["1"]["boot"] == "aaaa1111" and rows["2"]["boot"] == "?, bbbb2222"


def test_boot_id_is_this_boots_kernel_id_and_runs_record_it():
    from rapidbench.harness import boot_id, machine_info

    kernel = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert boot_id() == kernel.replace("-", "")[:8] and len(boot_id()) == 8
    assert machine_info()["boot"] == boot_id()
