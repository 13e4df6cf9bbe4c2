"""Algorithms, one file each (installed as `rapidbench.algorithms`). Importing registers the built-ins."""

from rapidbench.algorithms import dapo, grpo, pg, ppo, rapid  # noqa: F401
