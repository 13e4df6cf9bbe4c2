"""A comparison in the order its runs were made: its blocks of runs, the host's speed in each, and
the paired ratios as they stood after each block.

A sweep that spans sessions meets its host in different states (on the AMX machine one GRPO step
took 6.3 s in one session and 17.1 s in another). Pairing by seed keeps that drift out of a ratio
as long as a pair's runs meet the same host; this table lets a reader check it, and see how the
headline settled as seeds came in, from the run summaries alone (it replaced tables kept by hand in
ANALYSIS.md). A reading before the plan's last seed is not a verdict: the plan is fixed before the
runs, and the verdict is the last row.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import datetime, timedelta

from rapidbench.harness import SLOWED_BELOW, slowed
from rapidbench.report import _table, null, paired
from rapidbench.runs import RunRecord, Setting
from rapidbench.stats import Estimate

# A run starting later than this after the one before it finished opens a new block. A session's
# runs follow each other within seconds (a paused and resumed sweep within ~5 min); in the
# committed sweeps, sessions are 11 min or more apart.
BLOCK_GAP_S = 600.0


def finished(r: RunRecord) -> datetime:
    return datetime.fromisoformat(r.summary["finished_at"])


def started(r: RunRecord) -> datetime:
    """Its finish less its wall-clock (the load record's, else training + evaluation + checkpoints:
    late by the set-up's seconds)."""
    s = r.summary
    wall = (s.get("load") or {}).get("wall_s") or s["train_wall_s"] + s.get("eval_s", 0.0) + s.get("ckpt_s", 0.0)
    return finished(r) - timedelta(seconds=wall)


def blocks(runs: list[RunRecord], gap_s: float = BLOCK_GAP_S) -> list[list[RunRecord]]:
    """Runs in the order they finished, cut where one started more than `gap_s` after the last finished."""
    out: list[list[RunRecord]] = []
    for r in sorted(runs, key=finished):
        if not out or (started(r) - finished(out[-1][-1])).total_seconds() > gap_s:
            out.append([])
        out[-1].append(r)
    return out


def probe(r: RunRecord) -> float | None:
    """The host's bf16 matmul speed during the run (GFLOP/s, harness.speed_probe): the median of its
    readings at each evaluation, else of its start and end readings; None without any."""
    load = r.summary.get("load") or {}
    readings = load.get("speed_during") or [load.get("speed_start"), load.get("speed_end")]
    values = [x["bf16_gflops"] for x in readings if x and x.get("bf16_gflops")]
    return statistics.median(values) if values else None


def without_slowed(settings: list[Setting], base: Setting, subject: Setting, target: float,
                   below: float = SLOWED_BELOW) -> tuple[list[RunRecord], Estimate | None, tuple | None]:
    """The subject's paired ratio to the base and the null again, without every pair holding a run
    on a slowed host (harness.slowed over all these settings' runs): (the slowed runs, the ratio,
    null()'s tuple; the last two None where nothing is left to pair). A sensitivity beside the full
    reading, never a filter (the rule is fixed with the sweep)."""
    everyone = [r for s in settings for r in s.runs]
    flags = dict(zip(map(id, everyone), slowed([r.summary for r in everyone], below)))
    keep = {s.label: replace(s, runs=[r for r in s.runs if not flags[id(r)]]) for s in settings}
    out = [r for r in everyone if flags[id(r)]]
    if not (keep[base.label].runs and keep[subject.label].runs):
        return out, None, None
    _, ratio, _, _ = paired(keep[subject.label], keep[base.label], target)
    # the replicate may be gone entirely: null() then splits the base's seeds, and says so
    nl = null(keep[base.label], target, [k for k in keep.values() if k.runs])
    return out, ratio, nl


def boots(block: list[RunRecord]) -> str:
    """The block's machine boots (harness.boot_id) in the order its runs met them; '?' for a run
    recorded before boot ids were."""
    seen = dict.fromkeys((r.summary.get("machine") or {}).get("boot") or "?" for r in block)
    return ", ".join(seen)


def _span(a: datetime, b: datetime) -> str:
    return f"{a:%m-%d %H:%M}-{b:%H:%M}" if a.date() == b.date() else f"{a:%m-%d %H:%M} to {b:%m-%d %H:%M}"


def _range(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if f"{lo:.{digits}f}" == f"{hi:.{digits}f}" else f"{lo:.{digits}f}-{hi:.{digits}f}"


def _cell(e: Estimate | None) -> str:
    if not e or not e.pairs:
        return "-"
    return f"{e.fmt()} ({e.pairs})" if e.pairs > 1 else e.fmt()  # fmt says "1 pair" itself


def history_table(settings: list[Setting], target: float, base: Setting, subject: str) -> str:
    """One row per block of the comparison's runs (see the module): when, the bf16 probe's range
    over the block's runs, seconds per optimizer step of the base and of the `subject` settings
    with the most pairs (the ones a plan grew), the block's runs harness.slowed flags, and those
    settings' time ratios to the base and the null over the pairs complete after the block (pairs
    in brackets), also without pairs that hold a slowed run where any was flagged; the machine's
    boot ids where any run has one (a new boot within a block, or a block on the same boot as
    another, shows there). Every column is
    judged over the runs finished by the block's end. '' for a comparison made in one block, or
    one with a run that has no finishing time."""
    runs = [r for s in settings for r in s.runs]
    if not runs or any("finished_at" not in r.summary for r in runs):
        return ""
    counts = {s.label: paired(s, base, target)[1].pairs for s in settings
              if s.algo == subject and not s.replica_of and s is not base}
    tracked = [s for s in settings if counts.get(s.label) and counts[s.label] == max(counts.values())]
    cut = blocks(runs)
    if len(cut) < 2 or not tracked:
        return ""
    rows, done, any_slowed = [], [], False
    for i, block in enumerate(cut, 1):
        done += block
        ids, mine = {id(r) for r in done}, {id(r) for r in block}
        now = [x for x in (replace(s, runs=[r for r in s.runs if id(r) in ids]) for s in settings) if x.runs]
        by = {s.label: s for s in now}
        flagged: dict[str, list[str]] = {}
        for r, f in zip(done, slowed([r.summary for r in done])):
            any_slowed |= f
            if f and id(r) in mine:
                flagged.setdefault(r.label, []).append(str(r.pair_seed))
        b, nl = by.get(base.label), None
        ratios, without = [], []
        for s in tracked:
            mine_s = by.get(s.label)
            ratios.append(_cell(paired(mine_s, b, target)[1]) if b and mine_s else "-")
            without.append(_cell(without_slowed(now, b, mine_s, target)[1]) if b and mine_s else "-")
        if b:
            nl = null(b, target, now)
        rows.append([str(i), str(len(block)), _span(started(block[0]), finished(block[-1])), boots(block),
                     _range([p for p in map(probe, block) if p], 0),
                     *(_range([r.summary["train_wall_s"] / max(1, r.summary["steps"]) for r in block
                               if r.label == s.label], 1) for s in (base, *tracked)),
                     "; ".join(f"{k} {', '.join(v)}" for k, v in sorted(flagged.items())) or "none",
                     *ratios, _cell(nl[0]) if nl else "-", *without])
    heads = ["block", "runs", "started-finished", "boot", "bf16 probe GFLOP/s",
             *(f"{s.label} s / step" for s in (base, *tracked)), "slowed",
             *(f"{s.label} / {base.label} (pairs)" for s in tracked), "null (pairs)",
             *(f"{s.label} / {base.label} without slowed pairs" for s in tracked)]
    if not any_slowed:  # the columns would repeat the ones beside them
        heads, rows = heads[:-len(tracked)], [r[:-len(tracked)] for r in rows]
    at = heads.index("boot")
    if all(row[at] == "?" for row in rows):  # recorded before boot ids were
        heads, rows = heads[:at] + heads[at + 1:], [r[:at] + r[at + 1:] for r in rows]
    return _table(rows, heads)


def history_section(settings: list[Setting], target: float, base: Setting, subject: str) -> list[str]:
    """The report's lines for history_table (none where it is '')."""
    table = history_table(settings, target, base, subject)
    if not table:
        return []
    return ["### The comparison in the order it ran", "",
            f"One row per block of runs (a new block where a run started more than {BLOCK_GAP_S / 60:g} min after "
            "the one before it finished: a session on the machine). In each: the machine's boot id where runs "
            "recorded it (`harness.boot_id`; '?' for runs before it), the host's bf16 matmul probe (each "
            "run's median reading during training, range over the block), seconds per optimizer step, the block's "
            f"runs `harness.slowed` flags (lowest reading < {SLOWED_BELOW}x the median start reading of the runs "
            "finished by then: a flag can come and go as that median moves), and the time ratios to "
            f"{base.label} over the pairs complete after the block (pairs in brackets). A reading before the "
            "plan's last seed is not a verdict: the last row is the comparison's.", "", table, ""]
