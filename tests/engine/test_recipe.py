"""Recipes: validation that names the field, canonical form and hash, the output registry, and
the compatibility check that refuses adapters for another base before any build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workers.engine import recipe as recipe_module
from workers.engine.errors import EngineInputError
from workers.engine.fields import MAX_WEIGHT
from workers.engine.lora import check_compatible, read_adapter
from workers.engine.outputs import OUTPUT_KINDS, OutputKind, register_output
from workers.engine.recipe import MAX_ADAPTERS, Recipe
from workers.engine.safetensors_io import SafetensorsStreamWriter, TensorSpec
from workers.engine.shapes import module_shapes, weight_files

SHA_A, SHA_B, SHA_BASE = "a" * 64, "b" * 64, "c" * 64


def recipe_dict(**overrides: Any) -> dict[str, Any]:
    data = {
        "base": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct", "sha256": {"model.safetensors": SHA_BASE}},
        "adapters": [
            {"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": 1},
            {"ref": "bob/poet@1", "sha256": SHA_B, "weight": 0.5},
        ],
        "method": {"name": "ties", "params": {"density": 0.5}},
        "output": {"type": "merged"},
    }
    data.update(overrides)
    return data


def test_defaults_are_filled_in_and_the_form_is_canonical() -> None:
    recipe = Recipe.from_dict(recipe_dict())
    assert recipe.to_dict()["method"] == {
        "name": "ties",
        "params": {"density": 0.5, "lambda": 1.0, "normalize": True, "rescale": False, "consensus": "sum"},
    }
    assert recipe.to_dict()["output"] == {"type": "merged", "dtype": "bf16", "max_shard_bytes": 5_000_000_000}
    assert recipe.adapters[0].weight == 1.0
    assert Recipe.from_dict(recipe.to_dict()) == recipe  # the canonical form round-trips
    content = recipe.to_dict()
    content["adapters"] = [{"sha256": a["sha256"], "weight": a["weight"]} for a in content["adapters"]]
    assert json.loads(recipe.canonical_json()) == recipe.content_dict() == content  # hashed without the refs


def test_the_hash_is_by_content_not_by_the_refs_that_name_the_adapters() -> None:
    """A mirrored adapter has another ref on each hub: the same stack must hash the same on both."""
    here, there = recipe_dict(), recipe_dict()
    for adapter in there["adapters"]:
        adapter["ref"] = "mirror__hub.example-8001/" + adapter["ref"].split("/", 1)[1]
    assert Recipe.from_dict(here).hash == Recipe.from_dict(there).hash
    reweighted = recipe_dict()
    reweighted["adapters"][0]["weight"] = 0.25
    assert Recipe.from_dict(reweighted).hash != Recipe.from_dict(here).hash


def test_equivalent_recipes_hash_equal() -> None:
    plain = Recipe.from_dict(recipe_dict())
    spelled_out = recipe_dict(
        method={"name": "ties", "params": {"density": 0.50, "lambda": 1, "normalize": True, "consensus": "sum"}},
        output={"dtype": "bf16", "type": "merged", "max_shard_bytes": 5_000_000_000},
    )
    spelled_out["base"]["sha256"] = {"model.safetensors": SHA_BASE.upper()}
    spelled_out["adapters"][1]["weight"] = 0.1 + 0.4  # 0.5000000000000001 normalizes to 0.5
    spelled_out["adapters"][0].pop("weight")  # 1.0 is the default
    assert Recipe.from_dict(spelled_out).hash == plain.hash
    assert Recipe.from_dict(recipe_dict(method="linear", output="merged")).hash == Recipe.from_dict(
        recipe_dict(method={"name": "linear", "params": {}}, output={"type": "merged"})
    ).hash


def test_what_changes_the_build_changes_the_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Recipe.from_dict(recipe_dict()).hash
    reordered = recipe_dict()
    reordered["adapters"].reverse()
    variants = [
        recipe_dict(method={"name": "ties", "params": {"density": 0.6}}),
        recipe_dict(output={"type": "merged", "dtype": "fp16"}),
        recipe_dict(output={"type": "adapter", "rank": 8}),
        reordered,
    ]
    hashes = {Recipe.from_dict(v).hash for v in variants}
    assert base not in hashes and len(hashes) == len(variants)
    monkeypatch.setattr(recipe_module, "ENGINE_VERSION", "999")
    assert Recipe.from_dict(recipe_dict()).hash != base


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"method": {"name": "slerp"}}, "method.name", "method"),
        ({"method": {"name": "ties"}}, "method.params.density", "required"),
        ({"method": {"name": "svd"}}, "method.params.rank", "required"),
        ({"method": {"name": "ties", "params": {"density": 0}}}, "method.params.density", "invalid"),
        ({"method": {"name": "ties", "params": {"density": 0.5, "seed": 1}}}, "method.params.seed", "invalid"),
        ({"method": {"name": "dare_ties", "params": {"density": 0.5, "consensus": "max"}}}, "method.params.consensus", "invalid"),
        ({"method": {"name": "linear", "params": {"density": 0.5}}}, "method.params.density", "invalid"),
        ({"adapters": []}, "adapters", "required"),
        ({"adapters": "alice/x@1"}, "adapters", "type"),
        ({"output": {"type": "onnx"}}, "output.type", "output"),
        ({"output": {"type": "merged", "dtype": "int8"}}, "output.dtype", "invalid"),
        ({"output": {"type": "merged", "max_shard_bytes": 0}}, "output.max_shard_bytes", "type"),
        ({"output": {"type": "adapter"}}, "output.rank", "required"),  # ties is not low-rank
        ({"output": {"type": "adapter", "rank": 1.5}}, "output.rank", "type"),
        ({"base": {"name": "x", "sha256": {"model.bin": SHA_BASE}}}, "base.sha256", "invalid"),
        ({"base": {"name": "x", "sha256": {"model.safetensors": "123"}}}, "base.sha256.model.safetensors", "sha256"),
        ({"extra": 1}, "extra", "invalid"),
    ],
)
def test_validation_names_the_field(change: dict[str, Any], field: str, code: str) -> None:
    with pytest.raises(EngineInputError) as caught:
        Recipe.from_dict(recipe_dict(**change))
    assert (caught.value.field, caught.value.code) == (field, code)


@pytest.mark.parametrize(
    ("adapter", "field", "code"),
    [
        ({"ref": "alice/sql-helper", "sha256": SHA_A}, "adapters[0].ref", "invalid"),
        ({"ref": "alice/sql-helper@2", "sha256": "nope"}, "adapters[0].sha256", "sha256"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": "1"}, "adapters[0].weight", "type"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": float("nan")}, "adapters[0].weight", "invalid"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": 0}, "adapters[0].weight", "invalid"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": True}, "adapters[0].weight", "type"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": 1e308}, "adapters[0].weight", "invalid"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": -100.5}, "adapters[0].weight", "invalid"),
        ({"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": 10**400}, "adapters[0].weight", "invalid"),
        ({"ref": "bob/poet@1", "sha256": SHA_A}, "adapters[1]", "duplicate"),  # same content as adapters[0]
        ({"ref": "alice/sql-helper@02", "sha256": "d" * 64}, "adapters[1]", "duplicate"),  # same ref
    ],
)
def test_bad_adapter_entries(adapter: dict[str, Any], field: str, code: str) -> None:
    first = {"ref": "alice/sql-helper@2", "sha256": SHA_A}
    adapters = [adapter] if field.startswith("adapters[0]") else [first, adapter]
    with pytest.raises(EngineInputError) as caught:
        Recipe.from_dict(recipe_dict(adapters=adapters))
    assert (caught.value.field, caught.value.code) == (field, code)


@pytest.mark.parametrize(("weight", "shown"), [(1e308, "1e+308"), (101, "101"), (10**400, "too large")])
def test_weights_are_bounded_and_the_error_says_the_range(weight: float, shown: str) -> None:
    with pytest.raises(EngineInputError) as caught:
        Recipe.from_dict(recipe_dict(adapters=[{"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": weight}]))
    assert str(caught.value) == (f"adapters[0].weight: weight {shown} is out of range; a weight is a number from "
                                 f"-{MAX_WEIGHT:g} to {MAX_WEIGHT:g}")
    edges = [{"ref": "alice/sql-helper@2", "sha256": SHA_A, "weight": MAX_WEIGHT},
             {"ref": "bob/poet@1", "sha256": SHA_B, "weight": -MAX_WEIGHT}]
    assert [a.weight for a in Recipe.from_dict(recipe_dict(adapters=edges)).adapters] == [100.0, -100.0]


def test_the_adapter_count_is_checked_before_any_entry() -> None:
    with pytest.raises(EngineInputError) as caught:
        Recipe.from_dict(recipe_dict(adapters=[{"nonsense": i} for i in range(10_000)]))
    assert caught.value.field == "adapters" and f"at most {MAX_ADAPTERS} adapters per stack, got 10000" in str(caught.value)


def test_adapter_output_without_rank_only_for_low_rank_methods() -> None:
    for method in ("linear", "cat", {"name": "svd", "params": {"rank": 4}}):
        recipe = Recipe.from_dict(recipe_dict(method=method, output="adapter"))
        assert recipe.output.params == {"rank": None, "dtype": "fp32"}


def test_an_output_kind_registered_elsewhere_is_valid_without_editing_recipe() -> None:
    def parse(params: dict[str, Any], method: Any) -> dict[str, Any]:
        if set(params) - {"quant"}:
            raise EngineInputError("unknown parameter", field="output")
        return {"quant": params.get("quant", "q4_k_m")}

    register_output(OutputKind("gguf-test", parse, "some.module:build_gguf"))
    try:
        recipe = Recipe.from_dict(recipe_dict(output={"type": "gguf-test"}))
        assert recipe.to_dict()["output"] == {"type": "gguf-test", "quant": "q4_k_m"}
        assert recipe.output.kind.builder == "some.module:build_gguf"
    finally:
        OUTPUT_KINDS.pop("gguf-test")


# --- adapter folders and compatibility ----------------------------------------------------------


def write_adapter(folder: Path, modules: dict[str, tuple[int, int, int]], **config: Any) -> Path:
    """A PEFT-shaped adapter folder with zero weights: {module: (rank, in, out)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rank = next(iter(modules.values()))[0]
    settings = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": ["q_proj"], "bias": "none"}
    (folder / "adapter_config.json").write_text(json.dumps({**settings, **config}))
    specs = []
    for module, (r, inp, out) in modules.items():
        specs += [TensorSpec(f"base_model.model.{module}.lora_A.weight", "F32", (r, inp)),
                  TensorSpec(f"base_model.model.{module}.lora_B.weight", "F32", (out, r))]
    with SafetensorsStreamWriter(folder / "adapter_model.safetensors", specs) as writer:
        for spec in specs:
            writer.write(spec.name, np.zeros(spec.shape, dtype=np.float32))
    return folder


Q0 = "model.layers.0.self_attn.q_proj"


def test_read_adapter_indexes_modules_and_scales(tmp_path: Path) -> None:
    info = read_adapter(write_adapter(tmp_path / "a", {Q0: (4, 64, 64)}), ref="alice/a@1")
    assert list(info.modules) == [Q0] and info.modules[Q0].scale == 2.0 and info.modules[Q0].shape == (64, 64)
    rs = read_adapter(write_adapter(tmp_path / "rs", {Q0: (4, 64, 64)}, use_rslora=True))
    assert rs.modules[Q0].scale == 8 / 2  # alpha / sqrt(r)
    patterned = write_adapter(tmp_path / "p", {Q0: (2, 64, 64)}, r=8, rank_pattern={"q_proj": 2}, alpha_pattern={"q_proj": 1})
    assert read_adapter(patterned).modules[Q0].scale == 0.5


@pytest.mark.parametrize(
    ("config", "field"),
    [({"use_dora": True}, "use_dora"), ({"bias": "all"}, "bias"), ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
     ({"peft_type": "IA3"}, "peft_type"), ({"r": 8}, Q0), ({"lora_alpha": "big"}, "lora_alpha"),
     ({"init_lora_weights": "pissa_niter_4"}, "init_lora_weights")],
)
def test_read_adapter_refuses_what_cannot_be_stacked(tmp_path: Path, config: dict[str, Any], field: str) -> None:
    with pytest.raises(EngineInputError) as caught:
        read_adapter(write_adapter(tmp_path / "a", {Q0: (4, 64, 64)}, **config), ref="alice/a@1")
    assert caught.value.field == field and "alice/a@1" in str(caught.value)


def test_check_compatible_accepts_a_real_adapter(tiny_base: Path, make_adapter: Any) -> None:
    adapter = read_adapter(make_adapter(rank=4, target_modules=("q_proj", "down_proj")), ref="alice/a@1")
    check_compatible([adapter], module_shapes(weight_files(tiny_base)))


def test_check_compatible_refuses_other_modules_and_shapes(tiny_base: Path, tmp_path: Path) -> None:
    manifest = module_shapes(weight_files(tiny_base))
    wrong_shape = read_adapter(write_adapter(tmp_path / "s", {Q0: (4, 32, 64)}), ref="alice/narrow@1")
    extra_layer = read_adapter(
        write_adapter(tmp_path / "l", {Q0: (4, 64, 64), "model.layers.7.self_attn.q_proj": (4, 64, 64)}), ref="bob/deep@1"
    )
    other_model = read_adapter(write_adapter(tmp_path / "o", {"transformer.h.0.attn.c_attn": (4, 64, 192)}), ref="eve/gpt2@1")
    with pytest.raises(EngineInputError) as caught:
        check_compatible([wrong_shape, extra_layer, other_model], manifest)
    message = str(caught.value)
    assert caught.value.code == "incompatible"
    assert f"alice/narrow@1: {Q0} updates a 64x32 weight but the base model's is 64x64" in message
    assert "bob/deep@1: module model.layers.7.self_attn.q_proj is not a linear module of the base model" in message
    assert "eve/gpt2@1: none of its 1 modules" in message and "trained for another model" in message
