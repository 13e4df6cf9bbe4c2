"""Peak resident memory of the embedded demo (`make demo`: RAPID and GRPO on the cpu-demo preset),
each run in its own process for a few steps with its evaluations: trainer, in-process vLLM engine
and KV cache, grading workers. PPO (policy + critic engines) is measured too, for reference.

    python benchmarks/demo_memory.py [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parent.parent


def measure(algo: str, steps: int, out: Path, *overrides: str) -> dict:
    """Run one algorithm in a child process; the run records its peak RSS (getrusage: itself and its
    finished children, e.g. grading workers) in summary.json."""
    subprocess.run([sys.executable, "-m", "rapidbench", "run", "--preset", "cpu-demo", "--algo", algo,
                    "--max-steps", str(steps), "--output", str(out), "--no-progress", *overrides],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    return {"algo": algo, "overrides": list(overrides), "steps": steps,
            "peak_rss_gib": round(summary["peak_rss_mib"] / 1024, 2),
            # once the trainer and the vLLM engine are built (libraries, weights); gradients and Adam's
            # moments come with the first step, KV-cache pages as they are used, activations per batch
            "setup_peak_rss_gib": round(summary["setup_peak_rss_mib"] / 1024, 2),
            "s_per_step": round(summary["train_wall_s"] / max(1, summary["steps"]), 2)}


if __name__ == "__main__":
    from common import headline, write

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # the demo's two runs; the knob that trades memory for speed; PPO's two engines
        for i, (algo, *ov) in enumerate([("rapid",), ("grpo",), ("rapid", "train.micro_batch_size=8"), ("ppo",)]):
            rows.append(measure(algo, args.steps, Path(tmp) / str(i), *ov))
            print(rows[-1], flush=True)
    # Memory grows a little over a long run (allocator fragmentation): include the full-length runs
    # of the same setting that `make results` recorded on this kind of machine, when present.
    from rapidbench.harness import hardware_tag
    from rapidbench.runs import find_runs

    ref = [r for r in find_runs([str(ROOT / "results" / "runs" / "arith" / hardware_tag())])
           if r.path.parent.name in ("rapid", "grpo") and "peak_rss_mib" in r.summary]  # default A, not the sweep's
    for r in ref:
        rows.append({"algo": r.summary["algo"], "overrides": [], "steps": r.summary["steps"], "run": str(r.path.relative_to(ROOT)),
                     "peak_rss_gib": round(r.summary["peak_rss_mib"] / 1024, 2),
                     "s_per_step": round(r.summary["train_wall_s"] / max(1, r.summary["steps"]), 2)})
    demo = max(r["peak_rss_gib"] for r in rows if r["algo"] in ("rapid", "grpo") and not r["overrides"])
    small = next(r for r in rows if r["overrides"])
    head = headline("peak RSS of the embedded demo (GiB)", demo,
                    f"max of RAPID and GRPO on the cpu-demo preset, {args.steps} steps + evaluations each, own process, "
                    f"and of the {len(ref)} full-length reference runs of that setting on {hardware_tag()} in results/runs; "
                    f"{rows[0]['setup_peak_rss_gib']} GiB of RAPID's is there before the first batch (libraries, "
                    f"both engines' weights); "
                    f"RAPID with train.micro_batch_size=8: {small['peak_rss_gib']} GiB at {small['s_per_step']} s/step "
                    f"(16: {rows[0]['s_per_step']} s/step); "
                    f"PPO (two engines) {next(r['peak_rss_gib'] for r in rows if r['algo'] == 'ppo')} GiB",
                    target="<= 8", met=demo <= 8)
    print(f"wrote {write('demo_memory', {'rows': rows}, head)}")
    print(f"demo peak RSS GiB: {demo}")
