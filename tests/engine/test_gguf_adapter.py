"""PEFT adapter → GGUF LoRA: llama.cpp stacking adapters at run time must equal the merged export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import gguf
import pytest

from tests.fixtures_models import TrainedBase
from workers.engine import gguf_adapter
from workers.engine.errors import EngineInputError
from workers.engine.gguf_adapter import export_gguf_lora
from workers.engine.gguf_export import export_gguf
from workers.engine.llama_runtime import Adapter, LlamaRuntime, verify_runtime_stack
from workers.engine.tiny import DEFAULT_TARGETS, build_tiny_adapter

N_TOKENS = 32


def merge_with_peft(base: Path, adapters: Sequence[tuple[Path, float]], out: Path) -> Path:
    """The reference: PEFT's own merge_and_unload of the adapters, each at its scale, saved as an HF folder."""
    import torch
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    names = [f"a{i}" for i in range(len(adapters))]
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapters[0][0], adapter_name=names[0]
    )
    for name, (path, _) in zip(names[1:], adapters[1:], strict=True):
        model.load_adapter(path, adapter_name=name)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name, (_, scale) in zip(names, adapters, strict=True):
                if name in module.scaling:
                    module.scaling[name] *= scale
    model.merge_and_unload(adapter_names=names).save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def base(trained_base: Callable[..., TrainedBase], tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedBase, Path]:
    trained = trained_base()
    return trained, Path(export_gguf(trained.path, tmp_path_factory.mktemp("base") / "base-f16.gguf")["path"])


STACKS = {
    "q,v scale 1": [({}, 1.0)],
    "q,v scale 0.5": [({}, 0.5)],
    "rslora r8": [({"use_rslora": True, "rank": 8, "seed": 3}, 1.0)],
    "all targets": [({"target_modules": DEFAULT_TARGETS, "seed": 5}, 1.0)],
    "two adapters": [({"seed": 7}, 0.7), ({"target_modules": ("k_proj", "o_proj", "down_proj"), "seed": 9}, 0.4)],
}


@pytest.mark.parametrize("stack", list(STACKS))
def test_runtime_stack_equals_merged_export(stack: str, base: tuple[TrainedBase, Path], tmp_path: Path) -> None:
    trained, base_gguf = base
    adapters = []
    for i, (kwargs, scale) in enumerate(STACKS[stack]):
        adapter_dir = build_tiny_adapter(trained.path, tmp_path / f"adapter{i}", **kwargs)
        info = export_gguf_lora(adapter_dir, trained.path, tmp_path / f"adapter{i}.gguf")
        assert info["rescaled_modules"] == []
        adapters.append((adapter_dir, Adapter(info["path"], scale)))
    merged_dir = merge_with_peft(trained.path, [(d, a.scale) for d, a in adapters], tmp_path / "merged")
    export_gguf(merged_dir, tmp_path / "merged.gguf")

    report = verify_runtime_stack(
        base_gguf, [a for _, a in adapters], tmp_path / "merged.gguf", trained.prompts[:3], n_tokens=N_TOKENS
    )

    assert report["ok"], report
    # ...and the adapters matter: without them llama.cpp's logits are far from the merged model's.
    with LlamaRuntime(base_gguf) as plain, LlamaRuntime(tmp_path / "merged.gguf") as merged:
        ids = merged.tokenize(trained.prompts[0])
        moved = abs(plain.logits(ids) - merged.logits(ids)).max() / abs(merged.logits(ids)).max()
    assert moved > 10 * max(p["rel_logit_diff"] for p in report["prompts"])


def test_adapter_file_layout(base: tuple[TrainedBase, Path], tmp_path: Path) -> None:
    trained, _ = base
    adapter_dir = build_tiny_adapter(trained.path, tmp_path / "adapter", rank=4, alpha=8, use_rslora=True)
    info = export_gguf_lora(adapter_dir, trained.path, tmp_path / "adapter.gguf")
    reader = gguf.GGUFReader(tmp_path / "adapter.gguf")

    def field(key: str) -> object:
        value = reader.fields[key]
        part = value.parts[value.data[0]]
        return bytes(part).decode() if value.types[0] == gguf.GGUFValueType.STRING else part[0].item()

    assert (field("general.type"), field("adapter.type"), field("general.architecture")) == ("adapter", "lora", "llama")
    assert field("adapter.lora.alpha") == pytest.approx(8 * 2) == info["alpha"]  # rsLoRA: alpha·sqrt(r)
    shapes = {t.name: tuple(int(d) for d in reversed(t.shape)) for t in reader.tensors}
    assert shapes == {
        f"blk.{layer}.{name}.weight.lora_{side}": shape
        for layer in (0, 1)
        for name, out in (("attn_q", 64), ("attn_v", 32))
        for side, shape in (("a", (4, 64)), ("b", (out, 4)))
    }


def test_alpha_pattern_is_folded_into_b(base: tuple[TrainedBase, Path], tmp_path: Path) -> None:
    """llama.cpp has one alpha per file: a module PEFT scales differently gets the ratio in its B."""
    trained, base_gguf = base
    adapter_dir = build_tiny_adapter(trained.path, tmp_path / "adapter", seed=11)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["alpha_pattern"] = {"v_proj": 2.0}
    (adapter_dir / "adapter_config.json").write_text(json.dumps(config))

    info = export_gguf_lora(adapter_dir, trained.path, tmp_path / "adapter.gguf")
    assert info["rescaled_modules"] == [f"model.layers.{i}.self_attn.v_proj" for i in (0, 1)]
    export_gguf(merge_with_peft(trained.path, [(adapter_dir, 1.0)], tmp_path / "merged"), tmp_path / "merged.gguf")
    report = verify_runtime_stack(
        base_gguf, [Adapter(info["path"])], tmp_path / "merged.gguf", trained.prompts[:2], n_tokens=N_TOKENS
    )
    assert report["ok"], report


def test_without_permuting_b_the_gate_fails(
    base: tuple[TrainedBase, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained, base_gguf = base
    adapter_dir = build_tiny_adapter(trained.path, tmp_path / "adapter", target_modules=("q_proj", "k_proj"), seed=13)
    export_gguf(merge_with_peft(trained.path, [(adapter_dir, 1.0)], tmp_path / "merged"), tmp_path / "merged.gguf")
    monkeypatch.setattr(gguf_adapter, "to_llama_layout", lambda name, rows, hp: rows)
    export_gguf_lora(adapter_dir, trained.path, tmp_path / "wrong.gguf")
    report = verify_runtime_stack(
        base_gguf, [Adapter(tmp_path / "wrong.gguf")], tmp_path / "merged.gguf", trained.prompts[:2], n_tokens=N_TOKENS
    )
    assert not report["ok"]


def edit_config(adapter_dir: Path, **changes: object) -> None:
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (adapter_dir / "adapter_config.json").write_text(json.dumps({**config, **changes}))


@pytest.mark.parametrize(
    ("case", "code"),
    [("dora", "invalid"), ("modules_to_save", "invalid"), ("zero_alpha", "invalid"), ("lm_head_on_tied", "target"),
     ("other_base", "shape"), ("no_weights", "missing")],
)
def test_unexportable_adapters_are_refused(case: str, code: str, tiny_base: Path, make_adapter: Callable[..., Path],
                                           trained_base: Callable[..., TrainedBase], tmp_path: Path) -> None:
    adapter_dir = shutil.copytree(
        make_adapter(target_modules=("q_proj", "lm_head")) if case == "lm_head_on_tied" else make_adapter(),
        tmp_path / "adapter",
    )
    base_dir = tiny_base
    if case == "dora":
        edit_config(adapter_dir, use_dora=True)
    elif case == "modules_to_save":
        edit_config(adapter_dir, modules_to_save=["lm_head"])
    elif case == "zero_alpha":
        edit_config(adapter_dir, lora_alpha=0)
    elif case == "other_base":
        base_dir = trained_base(tie_word_embeddings=False, num_kv_heads=4).path  # v_proj is 64 rows there, not 32
    elif case == "no_weights":
        (adapter_dir / "adapter_model.safetensors").unlink()
    with pytest.raises(EngineInputError) as caught:
        export_gguf_lora(adapter_dir, base_dir, tmp_path / "out" / "adapter.gguf")
    assert caught.value.code == code
    assert not (tmp_path / "out").exists()


def test_llama_cpp_refuses_an_adapter_for_another_base(
    trained_base: Callable[..., TrainedBase], base: tuple[TrainedBase, Path], tmp_path: Path
) -> None:
    other = trained_base(tie_word_embeddings=False, num_kv_heads=4)
    adapter_dir = build_tiny_adapter(other.path, tmp_path / "adapter", target_modules=("k_proj",))
    export_gguf_lora(adapter_dir, other.path, tmp_path / "adapter.gguf")
    with pytest.raises(EngineInputError) as caught:
        LlamaRuntime(base[1], adapters=[Adapter(tmp_path / "adapter.gguf")])
    assert caught.value.code == "adapter_load"


# --- SmolLM2-135M-Instruct ---------------------------------------------------------------------


@pytest.mark.smollm2
def test_smollm2_runtime_stack_equals_merged_export(smollm2_dir: Path, tmp_path: Path) -> None:
    adapter_dir = build_tiny_adapter(smollm2_dir, tmp_path / "adapter", rank=8, alpha=16, init_std=0.02,
                                     target_modules=DEFAULT_TARGETS)
    export_gguf(smollm2_dir, tmp_path / "base.gguf")
    export_gguf_lora(adapter_dir, smollm2_dir, tmp_path / "adapter.gguf")
    export_gguf(merge_with_peft(smollm2_dir, [(adapter_dir, 1.0)], tmp_path / "merged"), tmp_path / "merged.gguf")
    report = verify_runtime_stack(tmp_path / "base.gguf", [Adapter(tmp_path / "adapter.gguf")], tmp_path / "merged.gguf",
                                  ["The capital of France is", "def fibonacci(n):"], n_tokens=N_TOKENS)
    assert report["ok"], report
