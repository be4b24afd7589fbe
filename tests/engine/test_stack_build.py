"""Stack builds end to end: equal to PEFT's own merge, loadable, deterministic, atomic.

Three tiny adapters with different ranks and target modules, one of them rsLoRA, are stacked on
the tiny Llama. PEFT's reference is `add_weighted_adapter(combination_type="cat")` followed by
`merge_and_unload`, which computes the same Σ w_i s_i B_i A_i by other code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.engine.bad_uploads import tiny_base_models
from tests.engine.test_recipe import write_adapter
from workers.engine import ENGINE_VERSION
from workers.engine.build import MANIFEST_NAME, BuildContext, build_stack, read_manifest
from workers.engine.errors import EngineInputError
from workers.engine.fsutil import sha256_file
from workers.engine.lora import read_adapter
from workers.engine.outputs import OUTPUT_KINDS, OutputKind, register_output
from workers.engine.recipe import Recipe
from workers.engine.safetensors_io import load_tensor_f32
from workers.engine.tiny import TINY_BASE_NAME, build_tiny_adapter, write_card
from workers.engine.validation import ADAPTER_CONFIG, ADAPTER_WEIGHTS, CARD, validate_adapter

REPO_ROOT = Path(__file__).resolve().parents[2]
IDS = torch.tensor([[1, 5, 42, 7, 300, 11, 2, 99, 64, 3]])
# (ref, make_adapter arguments, weight); the rsLoRA adapter is not first, see peft_logits.
STACK = [
    ("alice/qv@1", {"rank": 4, "alpha": 8, "target_modules": ("q_proj", "v_proj"), "seed": 1}, 0.7),
    ("bob/mlp@2", {"rank": 8, "alpha": 16, "target_modules": ("q_proj", "o_proj", "gate_proj", "down_proj"), "seed": 2}, -0.4),
    ("carol/rs@1", {"rank": 2, "alpha": 4, "target_modules": ("q_proj", "k_proj", "up_proj"), "seed": 3, "use_rslora": True}, 1.3),
]


@pytest.fixture(scope="module")
def adapter_dirs(make_adapter: Callable[..., Path]) -> dict[str, Path]:
    return {ref: make_adapter(**kwargs) for ref, kwargs, _ in STACK}


def make_recipe(base_dir: Path, adapter_dirs: Mapping[str, Path], method: Any = "linear", output: Any = "merged") -> Recipe:
    return Recipe.from_dict({
        "base": {"name": "nomoat/tiny-llama", "sha256": {"model.safetensors": sha256_file(base_dir / "model.safetensors")}},
        "adapters": [
            {"ref": ref, "sha256": sha256_file(adapter_dirs[ref] / "adapter_model.safetensors"), "weight": weight}
            for ref, _, weight in STACK
            if ref in adapter_dirs
        ],
        "method": method,
        "output": output,
    })


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits.double()


def load_merged(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype="auto").eval()  # the dtype config.json names


def peft_cat_merged(base_dir: Path, adapter_dirs: Mapping[str, Path], weights: list[float]) -> torch.nn.Module:
    """PEFT's own path. PEFT copies the first adapter's config into the `cat` adapter, use_rslora
    included, which would rescale the whole stack by sqrt(r): so the first adapter is plain LoRA."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    names = [f"a{i}" for i in range(len(adapter_dirs))]
    model = None
    for name, folder in zip(names, adapter_dirs.values(), strict=True):
        if model is None:
            model = PeftModel.from_pretrained(base, folder, adapter_name=name)
        else:
            model.load_adapter(folder, adapter_name=name)
    model.add_weighted_adapter(names, weights, "stack", combination_type="cat")
    model.set_adapter("stack")
    return model.merge_and_unload(adapter_names=["stack"]).eval()


@pytest.fixture(scope="module")
def peft_logits(tiny_base: Path, adapter_dirs: dict[str, Path]) -> torch.Tensor:
    return logits(peft_cat_merged(tiny_base, adapter_dirs, [weight for _, _, weight in STACK]))


def build(recipe: Recipe, base: Path, adapter_dirs: Mapping[str, Path], out: Path, **kwargs: Any) -> dict[str, Any]:
    return build_stack(recipe, base_dir=base, adapter_dirs=adapter_dirs, out_dir=out, **kwargs)


@pytest.mark.parametrize("method", ["linear", "cat"])
def test_merged_matches_peft(method: str, tiny_base: Path, adapter_dirs: dict, peft_logits: torch.Tensor, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, method, {"type": "merged", "dtype": "fp32", "max_shard_bytes": 100_000})
    build(recipe, tiny_base, adapter_dirs, tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors.index.json").is_file()  # sharded, and loads as such
    ours = logits(load_merged(tmp_path / "out"))
    assert (ours - peft_logits).abs().max() < 1e-4
    assert (ours - logits(load_merged(tiny_base))).abs().max() > 1e-2  # the stack does change the model


def test_cat_adapter_output_loads_in_peft_and_equals_the_merged_model(
    tiny_base: Path, adapter_dirs: dict, peft_logits: torch.Tensor, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    build(make_recipe(tiny_base, adapter_dirs, "cat", {"type": "merged", "dtype": "fp32"}), tiny_base, adapter_dirs, tmp_path / "m")
    manifest = build(make_recipe(tiny_base, adapter_dirs, "cat", "adapter"), tiny_base, adapter_dirs, tmp_path / "a")
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == 4 + 8 + 2  # q_proj carries all three adapters
    assert config["rank_pattern"]["model.layers.0.self_attn.k_proj"] == 2
    assert config["rank_pattern"]["model.layers.1.mlp.down_proj"] == config["alpha_pattern"]["model.layers.1.mlp.down_proj"] == 8
    assert set(manifest["report"]["energy_kept"].values()) == {1.0}

    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    with_adapter = logits(PeftModel.from_pretrained(base, tmp_path / "a").eval())
    merged = logits(load_merged(tmp_path / "m"))
    assert (with_adapter - merged).abs().max() < 1e-4
    assert (with_adapter - peft_logits).abs().max() < 1e-4


def test_an_adapter_the_hub_builds_passes_the_hubs_own_upload_validation(
    tiny_base: Path, adapter_dirs: dict, tmp_path: Path
) -> None:
    """One home for the LoRA rules: per-module ranks and alphas (rank_pattern / alpha_pattern), which a `cat`
    adapter of adapters with different ranks needs, are accepted by validation as by builds and by PEFT."""
    build(make_recipe(tiny_base, adapter_dirs, "cat", "adapter"), tiny_base, adapter_dirs, tmp_path / "a")
    upload = tmp_path / "upload"
    upload.mkdir()
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        (upload / name).write_bytes((tmp_path / "a" / name).read_bytes())
    write_card(upload / CARD, {"license": "apache-2.0", "base_model": TINY_BASE_NAME})
    report = validate_adapter(upload, base_models=tiny_base_models(tiny_base))
    assert report.ok, [c for c in report.checks if not c.passed and not c.skipped]
    read = read_adapter(tmp_path / "a")  # what a build of this adapter would stack: the same per-module scales
    for module, info in read.modules.items():
        stacked = info.scale * (load_tensor_f32(read.weights_path, info.b) @ load_tensor_f32(read.weights_path, info.a))
        assert report.stats["delta_norms"][module] == pytest.approx(float(np.linalg.norm(stacked)), rel=1e-4)


def test_svd_at_full_rank_keeps_all_energy(tiny_base: Path, adapter_dirs: dict, peft_logits: torch.Tensor, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, {"name": "svd", "params": {"rank": 14}}, {"type": "merged", "dtype": "fp32"})
    manifest = build(recipe, tiny_base, adapter_dirs, tmp_path / "out")
    assert set(manifest["report"]["energy_kept"].values()) == {1.0}
    assert (logits(load_merged(tmp_path / "out")) - peft_logits).abs().max() < 1e-4


def test_svd_adapter_equals_svd_merged(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    method = {"name": "svd", "params": {"rank": 3}}
    merged = build(make_recipe(tiny_base, adapter_dirs, method, {"type": "merged", "dtype": "fp32"}), tiny_base, adapter_dirs, tmp_path / "m")
    adapter = build(make_recipe(tiny_base, adapter_dirs, method, "adapter"), tiny_base, adapter_dirs, tmp_path / "a")
    energy = merged["report"]["energy_kept"]
    assert energy == adapter["report"]["energy_kept"]
    assert 0.0 < energy["model.layers.0.self_attn.q_proj"] < 1.0  # rank 14 truncated to 3
    assert energy["model.layers.0.self_attn.k_proj"] == 1.0  # rank 2 fits in 3
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["r"] == 3 and config["rank_pattern"] == {f"model.layers.{i}.{m}": 2 for i in (0, 1) for m in ("self_attn.k_proj", "mlp.up_proj")}
    base = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    with_adapter = logits(PeftModel.from_pretrained(base, tmp_path / "a").eval())
    assert (with_adapter - logits(load_merged(tmp_path / "m"))).abs().max() < 1e-4


def test_bf16_merged_model_loads_and_generates(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    build(make_recipe(tiny_base, adapter_dirs, "linear"), tiny_base, adapter_dirs, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "config.json").read_text())["torch_dtype"] == "bfloat16"
    model = load_merged(tmp_path / "out")
    assert model.dtype == torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    prompt = tokenizer("The quick brown fox", return_tensors="pt", return_token_type_ids=False)
    generated = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 6
    assert isinstance(tokenizer.decode(generated[0]), str)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("method", "output"),
    [
        ({"name": "dare_ties", "params": {"density": 0.5, "seed": 11}}, {"type": "merged", "max_shard_bytes": 150_000}),
        ({"name": "ties", "params": {"density": 0.3}}, {"type": "adapter", "rank": 4, "dtype": "bf16"}),
    ],
)
def test_the_same_recipe_gives_byte_identical_files(
    method: dict, output: dict, tiny_base: Path, adapter_dirs: dict, tmp_path: Path
) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, method, output)
    first = build(recipe, tiny_base, adapter_dirs, tmp_path / "one")
    second = build(recipe, tiny_base, adapter_dirs, tmp_path / "two")
    assert first == second
    assert file_bytes(tmp_path / "one") == file_bytes(tmp_path / "two")
    if output["type"] == "merged":  # another seed drops other entries
        other = make_recipe(tiny_base, adapter_dirs, {"name": "dare_ties", "params": {"density": 0.5, "seed": 12}}, output)
        assert build(other, tiny_base, adapter_dirs, tmp_path / "three")["files"] != first["files"]


def test_manifest_describes_the_artifact(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "linear", {"type": "merged", "max_shard_bytes": 200_000})
    seen: list[float] = []
    manifest = build(recipe, tiny_base, adapter_dirs, tmp_path / "out", progress=lambda f, m: seen.append(f))
    assert read_manifest(tmp_path / "out") == manifest
    assert manifest["recipe"] == recipe.content_dict() and manifest["recipe_hash"] == recipe.hash
    assert manifest["engine_version"] == ENGINE_VERSION
    assert manifest["sources"]["verified"] is True and manifest["sources"]["base"] == recipe.base.sha256
    assert [set(files) for files in manifest["sources"]["adapters"]] == [
        {"adapter_config.json", "adapter_model.safetensors"}] * len(STACK)
    assert [files["adapter_model.safetensors"] for files in manifest["sources"]["adapters"]] == [
        a.sha256 for a in recipe.adapters]
    on_disk = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MANIFEST_NAME)
    assert [f["path"] for f in manifest["files"]] == on_disk
    for entry in manifest["files"]:
        path = tmp_path / "out" / entry["path"]
        assert entry["size"] == path.stat().st_size and entry["sha256"] == sha256_file(path)
    assert "tokenizer.json" in on_disk and "generation_config.json" in on_disk
    assert seen == sorted(seen) and seen[-1] == 1.0


@pytest.mark.parametrize("output", ["merged", "gguf-f16", "runtime"])
def test_progress_only_moves_forward(output: str, tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    seen: list[float] = []
    build(make_recipe(tiny_base, adapter_dirs, "linear", output), tiny_base, adapter_dirs, tmp_path / "out",
          progress=lambda f, m: seen.append(f))
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == 1.0


def test_a_finished_artifact_is_returned_not_rebuilt(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "cat", "adapter")
    first = build(recipe, tiny_base, adapter_dirs, tmp_path / "out")
    calls: list[float] = []
    assert build(recipe, tiny_base, adapter_dirs, tmp_path / "out", progress=lambda f, m: calls.append(f)) == first
    assert calls == []
    with pytest.raises(FileExistsError):
        build(make_recipe(tiny_base, adapter_dirs, "linear", "adapter"), tiny_base, adapter_dirs, tmp_path / "out")


KILLER = """
import json, os, signal, sys
from workers.engine.build import build_stack
from workers.engine.recipe import Recipe

def progress(fraction, message):
    if fraction >= 0.5:
        os.kill(os.getpid(), signal.SIGKILL)

recipe, base, adapters, out = json.loads(sys.argv[1])
build_stack(Recipe.from_dict(recipe), base_dir=base, adapter_dirs=adapters, out_dir=out, progress=progress)
"""


def test_a_build_killed_midway_leaves_no_output_dir(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "linear", {"type": "merged", "max_shard_bytes": 50_000})
    args = [recipe.to_dict(), str(tiny_base), {ref: str(path) for ref, path in adapter_dirs.items()}, str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", KILLER, json.dumps(args)], env=env, cwd=REPO_ROOT, capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert not (tmp_path / "out").exists()
    leftovers = [p for p in tmp_path.iterdir()]
    assert [p.name.startswith(".out.staging-") for p in leftovers] == [True]  # hidden, never under the final name
    assert any(p.name.endswith(".safetensors") for p in leftovers[0].iterdir())  # it really was killed mid-write


def test_a_failing_build_removes_its_staging(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    def fail(fraction: float, message: str) -> None:
        if fraction > 0.5:
            raise RuntimeError("worker shutting down")

    recipe = make_recipe(tiny_base, adapter_dirs, "linear", {"type": "merged", "max_shard_bytes": 50_000})
    with pytest.raises(RuntimeError):
        build(recipe, tiny_base, adapter_dirs, tmp_path / "out", progress=fail)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("output", ["merged", {"type": "adapter"}])
def test_a_wrong_base_discards_the_build(output: Any, tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "linear", output)
    wrong_base = Recipe.from_dict({**recipe.to_dict(), "base": {"name": "x", "sha256": {"model.safetensors": "0" * 64}}})
    with pytest.raises(EngineInputError) as caught:
        build(wrong_base, tiny_base, adapter_dirs, tmp_path / "out")
    assert caught.value.code == "hash_mismatch" and caught.value.field == "base.sha256.model.safetensors"
    assert list(tmp_path.iterdir()) == []


def test_trusted_inputs_are_not_hashed(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "linear", "merged")
    trusted = Recipe.from_dict({**recipe.to_dict(), "base": {"name": "x", "sha256": {"model.safetensors": "0" * 64}}})
    manifest = build(trusted, tiny_base, adapter_dirs, tmp_path / "out", verify_inputs=False)
    assert manifest["sources"]["verified"] is False
    assert manifest["sources"]["base"] == {"model.safetensors": "0" * 64}  # the recipe's word, not checked


def test_an_adapter_that_is_not_the_recipes_discards_the_build(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs, "linear", {"type": "adapter"})
    swapped = {**adapter_dirs, "alice/qv@1": adapter_dirs["carol/rs@1"], "carol/rs@1": adapter_dirs["alice/qv@1"]}
    with pytest.raises(EngineInputError) as caught:
        build(recipe, tiny_base, swapped, tmp_path / "out")
    assert caught.value.code == "hash_mismatch" and caught.value.field == "adapters[0].sha256"
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_refused_before_anything_is_written(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    recipe = make_recipe(tiny_base, adapter_dirs)
    with pytest.raises(EngineInputError) as caught:
        build(recipe, tiny_base, {"alice/qv@1": adapter_dirs["alice/qv@1"]}, tmp_path / "out")
    assert "bob/mlp@2" in str(caught.value)

    other_files = Recipe.from_dict({**recipe.to_dict(), "base": {"name": "x", "sha256": {"model-1.safetensors": "0" * 64}}})
    with pytest.raises(EngineInputError) as caught:
        build(other_files, tiny_base, adapter_dirs, tmp_path / "out")
    assert caught.value.code == "hash_mismatch"

    alien = write_adapter(tmp_path / "alien", {"model.layers.9.self_attn.q_proj": (4, 64, 64)})
    with pytest.raises(EngineInputError) as caught:
        build(recipe, tiny_base, {**adapter_dirs, "bob/mlp@2": alien}, tmp_path / "out")
    assert caught.value.code == "incompatible"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alien"]


def probe_builder(ctx: BuildContext) -> dict[str, Any]:
    """An output kind defined outside the engine, as a GGUF exporter would be."""
    (ctx.staging / "modules.txt").write_text("\n".join(ctx.modules()))
    ctx.progress(1.0, "probe")
    return {"modules": len(ctx.modules())}


def test_a_registered_output_kind_builds_through_build_stack(tiny_base: Path, adapter_dirs: dict, tmp_path: Path) -> None:
    register_output(OutputKind("probe", lambda params, method: {}, "tests.engine.test_stack_build:probe_builder"))
    try:
        manifest = build(make_recipe(tiny_base, adapter_dirs, "linear", "probe"), tiny_base, adapter_dirs, tmp_path / "out")
    finally:
        OUTPUT_KINDS.pop("probe")
    assert [f["path"] for f in manifest["files"]] == ["modules.txt"]
    assert manifest["report"] == {"modules": 2 * 7}  # all seven projections of both layers


@pytest.mark.smollm2
def test_linear_stack_on_smollm2_matches_peft(smollm2_dir: Path, tmp_path: Path) -> None:
    from workers.engine.smollm2 import SMOLLM2_NAME

    small = {
        "alice/qv@1": build_tiny_adapter(smollm2_dir, tmp_path / "qv", rank=4, target_modules=("q_proj", "v_proj"), seed=1, base_model_name=SMOLLM2_NAME),
        "bob/mlp@2": build_tiny_adapter(smollm2_dir, tmp_path / "mlp", rank=8, alpha=16, target_modules=("o_proj", "up_proj"), seed=2, init_std=0.02, base_model_name=SMOLLM2_NAME),
    }
    recipe = make_recipe(smollm2_dir, small, "linear", {"type": "merged", "dtype": "fp32"})
    build(recipe, smollm2_dir, small, tmp_path / "out")
    ours = load_merged(tmp_path / "out")
    reference = peft_cat_merged(smollm2_dir, small, [weight for ref, _, weight in STACK if ref in small])
    reference_weights = reference.state_dict()
    assert max((w - reference_weights[name]).abs().max() for name, w in ours.state_dict().items()) < 1e-6
    # 30 layers of float32 arithmetic alone move these logits (|x| ~ 30) by ~3e-4, so the two sets
    # of merged weights are compared through a float64 forward pass.
    assert (logits(ours.double()) - logits(reference.double())).abs().max() < 1e-4


# Factors of ~1e20 are finite in float32 (so an upload passes validation), but their product is not.
@pytest.mark.parametrize(("method", "output"), [
    ("linear", {"type": "merged", "dtype": "fp32"}),
    ("linear", {"type": "adapter", "rank": 2}),  # the SVD of weighted factors
    ({"name": "ties", "params": {"density": 0.5}}, {"type": "adapter", "rank": 2}),  # the SVD of a dense delta
])
def test_a_stack_whose_output_is_not_finite_fails_naming_the_tensor(
        method: Any, output: Any, make_adapter: Callable[..., Path], tiny_base: Path, tmp_path: Path) -> None:
    huge = {"alice/qv@1": make_adapter(rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=1, init_std=1e20)}
    with pytest.raises(EngineInputError) as caught:
        build(make_recipe(tiny_base, huge, method, output), tiny_base, huge, tmp_path / "out")
    assert caught.value.code == "not_finite"
    field = caught.value.field
    assert field.startswith(("model.layers.", "base_model.model.model.layers.")) and field.endswith(".weight")
    assert str(caught.value).startswith(f"{field}: the stack's output has ")
    assert "infinite values" in str(caught.value) and "lower the weights" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_merged_weight_past_fp16_fails_in_fp16_and_builds_in_bf16(
        make_adapter: Callable[..., Path], tiny_base: Path, tmp_path: Path) -> None:
    large = {"alice/qv@1": make_adapter(rank=4, alpha=8, target_modules=("q_proj", "v_proj"), seed=1, init_std=100)}
    with pytest.raises(EngineInputError) as caught:
        build(make_recipe(tiny_base, large, "linear", {"type": "merged", "dtype": "fp16"}), tiny_base, large,
              tmp_path / "fp16")
    assert caught.value.code == "not_finite" and "infinite values once written as float16" in str(caught.value)
    assert "0 NaN" in str(caught.value)
    manifest = build(make_recipe(tiny_base, large, "linear", {"type": "merged", "dtype": "bf16"}), tiny_base, large,
                     tmp_path / "bf16")
    assert manifest["recipe"]["output"]["dtype"] == "bf16"
