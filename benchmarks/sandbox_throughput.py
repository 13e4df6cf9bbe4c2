"""Sandbox throughput: programs/s for trivial programs and for the MBPP reference solutions, with
bubblewrap isolation and with the bare-process fallback, at pool sizes 1 and 2, side by side in one
run. Both modes run the same evaluator protocol, so their difference is what the isolation
(bubblewrap's namespaces and mounts) costs per program. Writes
results/bench/<tag>/sandbox_throughput.json; the last line printed is that cost in milliseconds.

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
        "mbpp_reference": [mbpp.job(p, p.meta["reference"]) for p in probs],
    }
    rows, guards = [], {}
    for pool in (1, 2):
        for mode in ("bwrap", "process"):  # alternated, so machine drift hits both alike
            sb = Sandbox(pool_size=pool, mode=mode)
            guards[mode] = sb.guards
            for name, jobs in mixes.items():
                t0 = time.perf_counter()
                verdicts = sb.run_many(jobs)
                dt = time.perf_counter() - t0
                rows.append({"mode": mode, "pool": pool, "mix": name, "programs": len(jobs), "seconds": round(dt, 2),
                             "programs_per_s": round(len(jobs) / dt, 1), "passed": sum(v.passed for v in verdicts)})
                print(rows[-1], flush=True)
            sb.close()
    speed = {(r["mode"], r["pool"], r["mix"]): r["programs_per_s"] for r in rows}
    cost_ms = 1000 * (1 / speed[("bwrap", 1, "mbpp_reference")] - 1 / speed[("process", 1, "mbpp_reference")])
    scaling = speed[("bwrap", 2, "mbpp_reference")] / speed[("bwrap", 1, "mbpp_reference")]
    head = headline("bubblewrap isolation cost per program (ms, MBPP references, pool 1)", round(cost_ms, 1),
                    f"{len(probs)} MBPP reference solutions, bwrap vs process mode (same evaluator protocol); "
                    f"bwrap {speed[('bwrap', 2, 'mbpp_reference')]}/s at pool 2 ({scaling:.2f}x pool 1), "
                    f"process {speed[('process', 2, 'mbpp_reference')]}/s")
    print(f"wrote {write('sandbox_throughput', {'guards': guards, 'rows': rows, 'isolation_cost_ms': round(cost_ms, 2), 'bwrap_pool2_over_pool1': round(scaling, 3)}, head)}")
    print(f"bubblewrap isolation cost per MBPP program: {cost_ms:.1f} ms")
