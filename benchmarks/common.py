"""Shared bits for benchmark scripts: machine description and JSON output under
results/bench/<hardware tag>/ (a measurement belongs to the kind of machine it was made on)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rapidbench.harness import hardware_tag, machine_info

BENCH = Path(__file__).resolve().parent.parent / "results" / "bench"


def machine() -> dict:
    return {**machine_info(), "date": time.strftime("%Y-%m-%d")}


def headline(name: str, value, how: str, target: str | None = None, met: bool | None = None) -> dict:
    """The one ratio a benchmark stands for; `rapidbench report` lists it in results/README.md."""
    h = {"name": name, "value": value, "how": how}
    if target is not None:
        h["target"], h["met"] = target, "yes" if met else "no"
    return h


def write(name: str, data: dict, head: dict | None = None) -> Path:
    out = BENCH / hardware_tag()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    body = {"machine": machine(), **({"headline": head} if head else {}), **data}
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path
