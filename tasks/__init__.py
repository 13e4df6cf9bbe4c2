"""Task adapters (installed as `rapidbench.tasks`). Importing this package registers the built-ins."""

from rapidbench.tasks import arith, count, gsm8k, humaneval, math_task, mbpp, mbpp_plus  # noqa: F401  (registers the built-ins)
