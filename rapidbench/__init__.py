"""rapidbench: RL for small language models, RAPID next to GRPO/PPO/PG/DAPO, accuracy vs wall-clock."""

__version__ = "0.1.0"
