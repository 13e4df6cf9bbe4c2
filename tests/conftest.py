"""Shared fixtures. Tests use the tiny random model (built once from a config, no download)."""

from __future__ import annotations

import os

import pytest
import torch

from rapidbench.config import SamplerConfig


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model() -> str:
    from rapidbench.models import resolve_model

    return resolve_model("tiny-random")


@pytest.fixture(scope="session")
def dist():
    """A one-process gloo group, as `python launchers/run.py` makes (DeepSpeed needs one)."""
    from rapidbench.distributed import setup_distributed

    setup_distributed()
    yield


DIST_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _no_dist_env_for_children(request, monkeypatch):
    """Tests without `dist` launch runs in subprocesses: hide the session group's rendezvous.

    Otherwise a child started after a `dist` test inherits MASTER_PORT, which this process still
    holds, and dies with EADDRINUSE. Tests with `dist` keep the variables DeepSpeed reads.
    """
    if "dist" not in request.fixturenames:
        for key in DIST_ENV:
            monkeypatch.delenv(key, raising=False)
    yield


@pytest.fixture(scope="session")
def tiny_sampler(tiny_model, dist):
    """One sampler per backend for the whole session, on the tiny model.

    Closing the in-process vLLM engine tears down torch.distributed's default group (vLLM's own
    shutdown does), which the DeepSpeed engines of later tests still use: so close once, last.
    """
    from rapidbench.registry import SAMPLERS

    made = {}

    def get(name: str):
        if name not in made:
            made[name] = SAMPLERS.get(name)(tiny_model, SamplerConfig(dtype="float32", kv_cache_gib=1.0, max_model_len=512), seed=0)
        return made[name]

    yield get
    for s in made.values():
        s.close()


@pytest.fixture(scope="session")
def benchmark_script():
    """A script under benchmarks/ as a module, by name: its work sits under __main__, so importing it
    runs nothing and its functions can be tested."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def vllm_installed() -> bool:
    from rapidbench.samplers.vllm_sampler import vllm_available

    return vllm_available()


requires_vllm = pytest.mark.skipif(not vllm_installed(), reason="vLLM not installed")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
