"""Sandbox throughput: programs/s for trivial programs and for the MBPP reference solutions, at
pool sizes 1 and 2, side by side in one run. Writes results/bench/<tag>/sandbox_throughput.json; the
last line printed is the pool-2 / pool-1 speed-up on MBPP.

    python benchmarks/sandbox_throughput.py [--trivial 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    from common import headline, write

    from rapidbench.registry import TASKS
    from rapidbench.tasks.sandbox import Job, Sandbox

    ap = argparse.ArgumentParser()
    ap.add_argument("--trivial", type=int, default=200)
    args = ap.parse_args()
    cls = TASKS.get("mbpp")
    mbpp = cls(cls.Options())
    probs = mbpp.train_problems() + mbpp.test_problems()
    mixes = {
        "trivial": [Job("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"])] * args.trivial,
        "mbpp_reference": [Job(p.meta["reference"], p.answer, p.meta["setup"]) for p in probs],
    }
    rows = []
    for pool in (1, 2):
        sb = Sandbox(pool_size=pool)
        for name, jobs in mixes.items():
            t0 = time.perf_counter()
            verdicts = sb.run_many(jobs)
            dt = time.perf_counter() - t0
            rows.append({"pool": pool, "mix": name, "programs": len(jobs), "seconds": round(dt, 2),
                         "programs_per_s": round(len(jobs) / dt, 1), "passed": sum(v.passed for v in verdicts)})
            print(rows[-1], flush=True)
        guards = sb.guards
        sb.close()
    speed = {(r["pool"], r["mix"]): r["programs_per_s"] for r in rows}
    ratio = speed[(2, "mbpp_reference")] / speed[(1, "mbpp_reference")]
    head = headline("sandbox pool 2 / pool 1 programs/s on MBPP references", round(ratio, 2),
                    f"{len(mixes['mbpp_reference'])} reference solutions with their tests, guards: " + ", ".join(f"{k}={v}" for k, v in guards.items()))
    print(f"wrote {write('sandbox_throughput', {'guards': guards, 'rows': rows, 'pool2_over_pool1_mbpp': round(ratio, 3)}, head)}")
    print(f"sandbox pool 2 / pool 1 programs/s on MBPP references: {ratio:.2f}")
