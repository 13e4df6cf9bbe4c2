"""Grades per second per task, grading each task's own reference answers through its grade_many
(the parallel pools: sandbox slots for code, verify workers for MATH). Writes
results/bench/<tag>/grading_throughput.json; the last line printed is MBPP grades/s.

    python benchmarks/grading_throughput.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    from common import headline, write

    from rapidbench.registry import TASKS

    refs = {  # each task's known-good answer for a problem
        "gsm8k": lambda p: p.meta["solution"],
        "math": lambda p: p.meta["solution"],
        "mbpp": lambda p: p.meta["reference"],
        "mbpp-plus": lambda p: p.meta["reference"],  # every base and plus input (~110 per problem)
        "humaneval": lambda p: p.meta["reference"],
    }
    rows = []
    for name, ref in refs.items():
        cls = TASKS.get(name)
        task = cls(cls.Options())
        probs = task.test_problems()
        task.grade_many(probs[:2], [ref(p) for p in probs[:2]])  # warm-up: pools start
        t0 = time.perf_counter()
        grades = task.grade_many(probs, [ref(p) for p in probs])
        dt = time.perf_counter() - t0
        rows.append({"task": name, "graded": len(probs), "seconds": round(dt, 2),
                     "grades_per_s": round(len(probs) / dt, 1), "passed": sum(g.passed for g in grades)})
        print(rows[-1], flush=True)
    mb = next(r for r in rows if r["task"] == "mbpp")
    head = headline("MBPP grades/s (sandboxed)", mb["grades_per_s"],
                    "reference solutions of every test problem through Task.grade_many (bubblewrap, evaluator "
                    "protocol, pool = cores); " + ", ".join(f"{r['task']} {r['grades_per_s']}/s" for r in rows),
                    target=">= 25", met=mb["grades_per_s"] >= 25)
    print(f"wrote {write('grading_throughput', {'rows': rows}, head)}")
    print(f"mbpp grades/s: {next(r for r in rows if r['task'] == 'mbpp')['grades_per_s']}")
