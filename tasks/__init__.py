"""Task adapters (installed as `rapidbench.tasks`). Importing this package registers the built-ins."""

from rapidbench.tasks import arith  # noqa: F401  (registers "arith")
