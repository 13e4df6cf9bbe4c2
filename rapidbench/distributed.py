"""Distributed state in one place: joining the process group, and the few collectives the loop uses.

Every collective runs on the backend's own device (NCCL takes CUDA tensors only, gloo CPU ones),
and each rank selects its GPU from LOCAL_RANK before the first one, so no rank stages a tensor on
another's device. With one process every function is the identity.
"""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

import torch


STALE_BUILD_LOCK_S = 600  # DeepSpeed's CPU op builds in ~1 min on 2 cores


def _clear_stale_build_lock() -> None:
    """On CPU every process loads DeepSpeed's shared-memory op, built once by torch's JIT into an
    extensions directory guarded by a lock file. A process killed while building (a stopped sweep)
    leaves the lock, and every later run waits on it forever without a word: remove one that is
    old, saying so. The directory is per interpreter prefix, so two virtual environments do not
    rebuild it in turn (and widen that window)."""
    import sys
    import time

    root = os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(sys.prefix, "torch_extensions"))
    lock = os.path.join(root, "deepspeed_shm_comm", "lock")
    with contextlib.suppress(OSError):
        if time.time() - os.stat(lock).st_mtime > STALE_BUILD_LOCK_S:
            os.remove(lock)
            print(f"[rapidbench] removed a stale build lock left by a killed process: {lock}", file=sys.stderr)


def setup_distributed() -> None:
    """Join the process group the launcher (deepspeed / torchrun) set up, or make a 1-process one."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # said, so DeepSpeed does not warn that it guessed
        _clear_stale_build_lock()
    import deepspeed

    for key, val in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(key, val)
    if "MASTER_PORT" not in os.environ:
        import socket

        with contextlib.closing(socket.socket()) as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # before any collective touches a GPU
    if not torch.distributed.is_initialized():
        deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")


def teardown_distributed() -> None:
    """Leave the group together: ranks meet, then destroy it. A rank that exits while a peer is still
    inside gloo or NCCL can abort at exit ("terminate called without an active exception")."""
    if torch.distributed.is_initialized():
        if torch.distributed.get_world_size() > 1:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def world_size() -> int:
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Sum floats over ranks (float64, so counts stay exact)."""
    if world_size() == 1:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_device())
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def all_reduce_mean(values: Sequence[float]) -> list[float]:
    """Average floats over ranks."""
    w = world_size()
    return [v / w for v in all_reduce_sum(values)]


def all_reduce_tensor_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks, returned on its own device and dtype (for algorithms' global statistics)."""
    if world_size() == 1:
        return t
    out = t.detach().to(device=_device(), dtype=torch.float64)
    torch.distributed.all_reduce(out)
    return out.to(device=t.device, dtype=t.dtype)
