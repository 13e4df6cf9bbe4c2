"""Typed run configuration, resolved from layers.

Precedence, lowest first: dataclass defaults < `--preset NAME` (launchers/configs/NAME.yaml) <
`--config FILE` < CLI flags < `section.key=value` overrides. Unknown keys and wrong types are errors
naming the offending key. `algo_args` / `task_args` are typed by the chosen algorithm's / task's own
`Options` dataclass, so each plugin documents and validates its own knobs.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rapidbench.registry import ALGORITHMS, TASKS

PRESET_DIR = Path(__file__).resolve().parent.parent / "launchers" / "configs"


class ConfigError(ValueError):
    """A broken config: unknown key, wrong type, missing preset. One line naming the key."""


@dataclass
class GenerationConfig:
    """Sampling for training rollouts. top_p/top_k stay off by default: behaviour log-probs are
    then exactly the temperature-scaled softmax that the trainer recomputes."""

    max_new_tokens: int = 48
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1


@dataclass
class SamplerConfig:
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_model_len: int = 1024
    kv_cache_gib: float = 1.0  # vLLM CPU: VLLM_CPU_KVCACHE_SPACE; 1 GiB holds ~20k fp32 tokens of the 135M model
    gpu_memory_utilization: float = 0.35  # vLLM CUDA, colocated with training
    sleep_between_phases: bool = True  # vLLM CUDA only: free KV cache while training
    staleness_tolerance: float = 0.1  # warn when |mean ratio - 1| after a sync exceeds this


@dataclass
class TrainConfig:
    lr: float = 2e-5
    lr_schedule: Literal["constant", "warmup", "cosine"] = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.99
    grad_clip: float = 1.0
    micro_batch_size: int = 8  # completions per forward/backward; rows are length-sorted into micro-batches
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    gradient_checkpointing: bool = False
    # "auto": eager on CPU (measured faster than sdpa's CPU kernel at these short lengths, see
    # benchmarks/trainer_step.py), sdpa on CUDA
    attn_implementation: Literal["auto", "sdpa", "eager"] = "auto"
    adam_implementation: Literal["fused", "foreach", "for-loop"] = "fused"  # torch AdamW kernel (same maths)
    checkpoint_every: int = 0  # optimizer steps; 0 = only at the end
    keep_checkpoints: int = 2  # newest complete checkpoints kept (a corrupt newest falls back)
    old_logprobs: Literal["auto", "trainer", "sampler"] = "auto"  # source of pi_old (see README)
    deepspeed_config: str = ""  # optional DeepSpeed JSON merged over ours ("auto" = keep ours)


@dataclass
class EvalConfig:
    every_steps: int = 8  # 0 = only at start and end
    every_seconds: float = 0.0  # training wall-clock seconds; 0 = off
    num_problems: int = 200
    n_samples: int = 2  # > 1 enables pass@k
    k: list[int] = field(default_factory=lambda: [1, 2])
    temperature: float = 0.7  # sampled accuracy, as in training; 0 = greedy
    max_new_tokens: int = 0  # 0 = same as generation
    at_start: bool = True
    target: float = 0.0  # pass@1 a comparison races to, fixed before the runs and recorded (0 = none)
    # Completions of each evaluation kept in samples.jsonl with their grade (0 = none): what the
    # reward paid for can be read after the run, without a checkpoint or a rerun.
    log_samples: int = 4


@dataclass
class Config:
    algo: str = "rapid"
    task: str = "arith"
    model: str = "smollm2-135m"
    sampler: str = "auto"
    trainer: str = "deepspeed"
    seed: int = 0
    max_steps: int = 0  # 0 = no step limit
    time_budget: float = 0.0  # seconds of training wall-clock; 0 = no limit
    output: str = ""  # "" = runs/<algo>-<task>-<time>
    resume: str = ""
    preset: str = ""
    label: str = ""  # this run's setting in a comparison, e.g. "rapid (A=2)" (set by `rapidbench compare`)
    replica_of: str = ""  # a replicate (the A/A null) of the setting with this label, under other seeds
    pair_seed: int = -1  # the seed reports pair this run by (-1 = its own seed; a replicate: its base seed)
    progress: bool = True
    loggers: list[Literal["tensorboard", "wandb"]] = field(default_factory=list)  # optional mirrors of the JSONL
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    sampler_args: SamplerConfig = field(default_factory=SamplerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    algo_args: Any = None  # the algorithm's Options dataclass, filled by resolve()
    task_args: Any = None  # the task's Options dataclass, filled by resolve()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------------------------------------
# typed construction from plain dicts
# ---------------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin in (list, tuple):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool) and origin is list:
            value = [value]  # `eval.k=4` means [4]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return origin(_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads `1e-5` as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {_type_name(tp)}")


def build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from `data`, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        where = f"'{prefix}'" if prefix else "the config"
        raise ConfigError(f"unknown key {prefix + '.' if prefix else ''}{unknown[0]} in {where}; valid keys: {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{prefix}.{name}" if prefix else name)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------------
def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top, got {type(data).__name__}")
    return data


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_description(name: str) -> str:
    """The preset file's first comment line."""
    for line in (PRESET_DIR / f"{name}.yaml").read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_preset(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}'; presets: {', '.join(preset_names()) or '(none)'}")
    return load_yaml(path)


def parse_override(text: str) -> dict[str, Any]:
    """`train.lr=1e-5` -> {"train": {"lr": 1e-5}}; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {}
    cur = out
    parts = key.replace("-", "_").split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return out


def resolve(
    flags: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    config_file: str | None = None,
    preset: str | None = None,
    base: dict[str, Any] | None = None,
) -> Config:
    """Merge the layers and build a typed Config (see module docstring for precedence).

    `base` (e.g. a resumed run's saved config) sits just above the defaults.
    """
    layers: list[dict[str, Any]] = []
    if base:
        layers.append(base)
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    preset = preset or flags.get("preset") or ""
    if preset:
        layers.append(load_preset(preset))
    if config_file:
        layers.append(load_yaml(Path(config_file)))
    layers.append(_nest(flags))
    for text in overrides or []:
        layers.append(parse_override(text))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge(merged, layer)
    if preset:
        merged["preset"] = preset

    algo_raw = merged.pop("algo_args", None) or {}
    task_raw = merged.pop("task_args", None) or {}
    cfg = build(Config, merged)
    algo_cls = ALGORITHMS.get(cfg.algo)
    task_cls = TASKS.get(cfg.task)
    cfg.algo_args = build(algo_cls.Options, algo_raw, "algo_args")
    cfg.task_args = build(task_cls.Options, task_raw, "task_args")
    check_ranges(cfg)
    return cfg


def check_ranges(cfg: Config) -> None:
    """Values a type admits but a run cannot use: one line naming the key, before anything starts."""
    def need(ok: bool, key: str, what: str, got: Any) -> None:
        if not ok:
            raise ConfigError(f"{key} must be {what}, got {got!r}")

    g, t, e, sa = cfg.generation, cfg.train, cfg.eval, cfg.sampler_args
    need(cfg.max_steps >= 0, "max_steps", ">= 0 (0 = no limit)", cfg.max_steps)
    need(cfg.time_budget >= 0, "time_budget", ">= 0 seconds (0 = no limit)", cfg.time_budget)
    need(g.max_new_tokens >= 1, "generation.max_new_tokens", ">= 1", g.max_new_tokens)
    need(g.temperature > 0, "generation.temperature", "> 0 for training (sampled rollouts)", g.temperature)
    need(0 < g.top_p <= 1, "generation.top_p", "in (0, 1]", g.top_p)
    need(t.lr > 0, "train.lr", "> 0", t.lr)
    need(t.micro_batch_size >= 1, "train.micro_batch_size", ">= 1", t.micro_batch_size)
    need(t.zero_stage in (0, 1, 2, 3), "train.zero_stage", "one of 0, 1, 2, 3", t.zero_stage)
    need(t.grad_clip >= 0, "train.grad_clip", ">= 0 (0 = off)", t.grad_clip)
    need(t.warmup_steps >= 0 and t.checkpoint_every >= 0 and t.keep_checkpoints >= 1,
         "train.warmup_steps / checkpoint_every / keep_checkpoints", ">= 0 / >= 0 / >= 1",
         (t.warmup_steps, t.checkpoint_every, t.keep_checkpoints))
    need(e.num_problems >= 1, "eval.num_problems", ">= 1", e.num_problems)
    need(e.n_samples >= 1, "eval.n_samples", ">= 1", e.n_samples)
    need(all(1 <= k <= e.n_samples for k in e.k), "eval.k", f"values in 1..eval.n_samples ({e.n_samples}): pass@k needs "
         "k samples per problem (raise eval.n_samples or drop the k)", e.k)
    need(e.temperature >= 0, "eval.temperature", ">= 0 (0 = greedy)", e.temperature)
    need(e.every_steps >= 0 and e.every_seconds >= 0, "eval.every_steps / every_seconds", ">= 0 (0 = off)",
         (e.every_steps, e.every_seconds))
    need(e.log_samples >= 0, "eval.log_samples", ">= 0 (0 = none)", e.log_samples)
    need(0 <= e.target <= 1, "eval.target", "a pass@1 in [0, 1] (0 = none)", e.target)
    need(sa.kv_cache_gib > 0 and 0 < sa.gpu_memory_utilization <= 1, "sampler_args.kv_cache_gib / gpu_memory_utilization",
         "> 0 / in (0, 1]", (sa.kv_cache_gib, sa.gpu_memory_utilization))


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Flags may name nested keys with dots (`train.zero_stage`)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        cur = out
        parts = key.split(".")
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = value
    return out
