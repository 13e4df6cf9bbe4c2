"""Shared bits for benchmark scripts: machine description and JSON output under results/bench/."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rapidbench.harness import machine_info

OUT = Path(__file__).resolve().parent.parent / "results" / "bench"


def machine() -> dict:
    return {**machine_info(), "date": time.strftime("%Y-%m-%d")}


def write(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path
