"""Algorithms, one file each (installed as `rapidbench.algorithms`). Importing registers the built-ins."""

from rapidbench.algorithms import grpo, rapid  # noqa: F401
