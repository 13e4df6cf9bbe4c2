#!/usr/bin/env python
"""Launch one run. Same flags as `rapidbench run`; works under all three launchers:

    deepspeed launchers/run.py --algo rapid --task mbpp
    torchrun --nproc_per_node 2 launchers/run.py --algo grpo --task arith
    python launchers/run.py --algo rapid --task arith        # single process; sets the env itself
"""

import sys

if __name__ == "__main__":  # vLLM (and multiprocessing) re-import the main module: keep the guard
    from rapidbench.cli import main

    sys.exit(main(["run", *sys.argv[1:]]))
