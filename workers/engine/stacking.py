"""The stacking math: each adapter's true delta, and the methods that combine the deltas.

On every module it targets, adapter i contributes its true delta

    ΔW_i = s_i · B_i A_i,    s_i = alpha_i / r_i  (alpha_i / sqrt(r_i) with rsLoRA),

read from its own adapter_config.json, and a method turns the weighted deltas into one update ΔW
for that module; the merged weight is W = W0 + ΔW. Where an adapter does not target a module its
delta there is 0, so adapters may target different modules and have different ranks. All math
runs in float32, one module at a time: memory follows the largest module, never the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workers.engine.errors import EngineInputError
from workers.engine.lora import AdapterInfo
from workers.engine.methods import MethodSpec
from workers.engine.safetensors_io import TensorInfo

TORCH_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def tensor_from_bytes(raw: np.ndarray, dtype: str, shape: Sequence[int]) -> torch.Tensor:
    """A float32 tensor over one tensor's little-endian bytes (a writable uint8 array): F32 shares
    the buffer, other float dtypes are converted."""
    return torch.from_numpy(raw).view(TORCH_DTYPES[dtype]).reshape(tuple(shape)).float()


def require_finite(tensor: torch.Tensor, name: str, *, where: str = "") -> None:
    """Fail the build on a combined or written tensor holding NaN or infinity: a stack of those is no model."""
    finite = torch.isfinite(tensor)
    if bool(finite.all()):
        return
    nan = int(torch.isnan(tensor).sum())
    raise EngineInputError(
        f"the stack's output has {nan} NaN and {tensor.numel() - int(finite.sum()) - nan} infinite values{where}; "
        "the adapters' weights (or their values) are too large to combine: lower the weights",
        field=name, code="not_finite",
    )


@dataclass(frozen=True)
class Factors:
    """One adapter's LoRA factors on one module, as float32: ΔW = scale · b @ a."""

    a: torch.Tensor  # rank × in
    b: torch.Tensor  # out × rank
    scale: float

    def delta(self) -> torch.Tensor:
        return torch.mm(self.b, self.a).mul_(self.scale)


class StackFactors:
    """The factors of every adapter of a stack, module by module, in recipe order.

    Each adapter file is memory-mapped once, on first use (copy-on-write, so torch accepts the
    views; nothing is written back): mapping hundreds of tiny tensors one by one costs more than
    the math on them.
    """

    def __init__(self, adapters: Sequence[AdapterInfo]) -> None:
        self.adapters = tuple(adapters)
        self._files: dict[Path, np.ndarray] = {}

    def _tensor(self, path: Path, info: TensorInfo) -> torch.Tensor:
        if path not in self._files:
            self._files[path] = np.memmap(path, dtype=np.uint8, mode="c")
        return tensor_from_bytes(self._files[path][info.start : info.end], info.dtype, info.shape)

    def module(self, module: str) -> list[Factors | None]:
        """Each adapter's factors on `module`, None where it does not target it."""
        found: list[Factors | None] = []
        for adapter in self.adapters:
            lora = adapter.modules.get(module)
            path = adapter.weights_path
            found.append(None if lora is None else Factors(self._tensor(path, lora.a), self._tensor(path, lora.b), lora.scale))
        return found


def cat_factors(factors: Sequence[Factors | None], weights: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """`cat`: one factorization of rank Σ r_i, at scale 1, whose product is the `linear` sum exactly.

    A = [A_1; A_2; ...] (stacked rows), B = [w_1 s_1 B_1, w_2 s_2 B_2, ...] (side by side), so
    B A = Σ_i w_i s_i B_i A_i = Σ_i w_i ΔW_i. PEFT's `add_weighted_adapter(combination_type="cat")`
    builds the same product (it puts w_i s_i on A_i instead).
    """
    present = [(f, w) for f, w in zip(factors, weights, strict=True) if f is not None]
    a = torch.cat([f.a for f, _ in present], dim=0)
    b = torch.cat([f.b * (w * f.scale) for f, w in present], dim=1)
    return a, b


def _truncate(u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Keep the top `rank` singular triplets as A = Vh_k, B = U_k diag(S_k); energy = Σ_k S² / Σ S².

    A singular pair is defined up to a joint sign; making each column of U_k have its largest
    entry positive keeps the factors reproducible.
    """
    k = min(rank, s.shape[0])
    u, s_k, vh = u[:, :k], s[:k], vh[:k]
    pivots = u.abs().argmax(dim=0, keepdim=True)
    signs = torch.where(u.gather(0, pivots).squeeze(0) < 0, -1.0, 1.0)
    total = float(s.double().square().sum())
    kept = float(s_k.double().square().sum())
    return (vh * signs[:, None]).contiguous(), (u * (s_k * signs)).contiguous(), kept / total if total > 0 else 1.0


def svd_dense(delta: torch.Tensor, rank: int, *, name: str = "delta") -> tuple[torch.Tensor, torch.Tensor, float]:
    """The best rank-`rank` factors (A, B, energy kept) of a dense delta (Eckart-Young).

    A delta that is not finite fails the build naming `name` (an SVD of it fails obscurely).
    """
    require_finite(delta, name, where=" in its combined delta")
    u, s, vh = torch.linalg.svd(delta, full_matrices=False)
    return _truncate(u, s, vh, rank)


def svd_low_rank(a: torch.Tensor, b: torch.Tensor, rank: int, *, name: str = "delta") -> tuple[torch.Tensor, torch.Tensor, float]:
    """Truncate B A to `rank` without forming it: B = Q_b R_b, Aᵀ = Q_a R_a, then the SVD of the
    small core R_b R_aᵀ = U S Vh gives B A = (Q_b U) S (Vh Q_aᵀ). Costs O((out + in) r²), not O(out·in·r).

    Finite factors can still make a core that is not (1e20 · 1e20); that fails the build naming `name`.
    """
    q_b, r_b = torch.linalg.qr(b)
    q_a, r_a = torch.linalg.qr(a.T)
    core = r_b @ r_a.T
    require_finite(core, name, where=" in its combined delta")
    u, s, vh = torch.linalg.svd(core)
    return _truncate(q_b @ u, s, vh @ q_a.T, rank)


def module_seed(seed: int, module: str) -> int:
    """The random stream of one module: a function of (seed, module name), not of build order."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{module}".encode()).digest()[:8], "little")


def _sparsify(
    delta: torch.Tensor, method: str, density: float, rescale: bool, generator: torch.Generator | None
) -> torch.Tensor:
    if method == "none" or density >= 1.0:
        return delta
    if method == "magnitude":
        keep = torch.zeros(delta.numel(), dtype=torch.bool)
        k = int(density * delta.numel())
        if k > 0:
            keep[torch.topk(delta.abs().flatten(), k, sorted=False).indices] = True
        keep = keep.view(delta.shape)
    else:
        keep = torch.rand(delta.shape, generator=generator) < density
    kept = delta * keep
    if rescale:
        before, after = float(delta.abs().sum()), float(kept.abs().sum())
        if before >= 1e-7 and after >= 1e-7:
            kept.mul_(before / after)
    return kept


def generalized_task_arithmetic(
    deltas: Sequence[torch.Tensor | None],
    weights: Sequence[float],
    *,
    module: str,
    sparsify: str = "none",
    density: float = 1.0,
    seed: int = 0,
    consensus: str = "none",
    normalize: bool = False,
    rescale: bool = False,
    lam: float = 1.0,
) -> torch.Tensor:
    """mergekit's generalized task arithmetic on the adapters' true deltas (never on A and B).

    1. Sparsify each delta, δ_i ← m_i ⊙ δ_i:
       none: m_i = 1; magnitude: m_i keeps the ⌊density · numel⌋ entries of largest |δ_i| (TIES
       trim); random: m_i ~ Bernoulli(density) per entry (DARE drop), drawn from a generator
       seeded by (seed, module) so results do not depend on the order modules are built in.
       With rescale, δ_i ← δ_i · ‖δ_i‖₁ / ‖m_i ⊙ δ_i‖₁ (mergekit's L1 rescale; for random
       masks that is DARE's 1/density in expectation).
    2. Weight: τ_i = w_i δ_i.
    3. Sign consensus (TIES elect): none: c_i = 1. sum: σ = sgn(Σ_i τ_i); count: σ =
       sgn(Σ_i sgn τ_i); σ = +1 where the vote is 0; c_i = [sgn τ_i = σ] (zeros never count).
    4. Merge: ΔW = Σ_i c_i τ_i. With normalize, divide entrywise by Σ_i c_i w_i (by the scalar
       Σ_i w_i over all adapters without consensus); a divisor of 0 is replaced by 1.
    5. Scale: ΔW ← λ · ΔW.

    The presets in methods.METHODS: task_arithmetic (no sparsify, no consensus), ties
    (magnitude + sum + normalize), dare_ties (random + rescale + sum), dare_linear (random +
    rescale), magnitude_prune (magnitude). `deltas[i]` is None where adapter i does not target
    the module (its delta is 0).
    """
    generator = torch.Generator().manual_seed(module_seed(seed, module)) if sparsify == "random" else None
    present = [(d, w) for d, w in zip(deltas, weights, strict=True) if d is not None]
    taus = torch.stack([_sparsify(d, sparsify, density, rescale, generator) * w for d, w in present])
    if consensus == "none":
        merged = taus.sum(dim=0)
        divisor: torch.Tensor | float = sum(weights) if abs(sum(weights)) >= 1e-8 else 1.0
    else:
        signs = taus.sign()
        vote = taus.sum(dim=0) if consensus == "sum" else signs.sum(dim=0)
        agree = signs == torch.where(vote >= 0, 1.0, -1.0)
        merged = (taus * agree).sum(dim=0)
        column = torch.tensor([w for _, w in present], dtype=taus.dtype).view(-1, *([1] * (taus.dim() - 1)))
        divisor = (column * agree).sum(dim=0)
        divisor[divisor == 0] = 1.0
    if normalize:
        merged = merged / divisor
    return merged * lam if lam != 1.0 else merged


def _true_deltas(factors: Sequence[Factors | None]) -> list[torch.Tensor | None]:
    return [f.delta() if f is not None else None for f in factors]


def _capped_rank(method: MethodSpec, rank: int | None) -> int | None:
    """A method's own `rank` parameter (svd's) caps the rank, whatever the output asks for."""
    own = method.params.get("rank")
    if own is None:
        return rank
    return own if rank is None else min(rank, own)


def low_rank_factors(
    method: MethodSpec, module: str, factors: Sequence[Factors | None], weights: Sequence[float], rank: int | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The delta function of the low-rank methods (linear, cat, svd): the exact `cat` factors of the weighted
    sum, SVD-truncated to the method's own rank and to `rank` when either is set."""
    a, b = cat_factors(factors, weights)
    rank = _capped_rank(method, rank)
    return (a, b, 1.0) if rank is None else svd_low_rank(a, b, rank, name=f"{module}.weight")


def task_arithmetic_delta(
    method: MethodSpec, module: str, factors: Sequence[Factors | None], weights: Sequence[float]
) -> torch.Tensor:
    """The delta function of the whole task-arithmetic family: its preset's knobs, one generalized function."""
    return generalized_task_arithmetic(_true_deltas(factors), weights, module=module, **method.knobs)


def adapter_rank(method: MethodSpec, ranks: Sequence[int], shape: tuple[int, int], rank: int | None) -> int:
    """The rank `module_factors` returns for one module, known before any weight is read (a
    safetensors writer declares every shape first). `ranks` are those of the adapters targeting it."""
    if not method.method.low_rank:
        return min(rank, *shape)
    rank = _capped_rank(method, rank)
    return sum(ranks) if rank is None else min(rank, sum(ranks), *shape)


def module_factors(
    method: MethodSpec, module: str, factors: Sequence[Factors | None], weights: Sequence[float], rank: int | None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(A, B, energy kept) for one module of an adapter output: ΔW ≈ B A at scale 1.

    A low-rank method gives its factors (linear and cat the exact `cat` factors when `rank` is None; svd
    truncates the exact sum to its rank); with `rank`, a dense delta (the task-arithmetic family's, which
    is not low-rank) is SVD-truncated to it, the only way to store it as an adapter.
    """
    delta_of = method.method.load_delta()
    if method.method.low_rank:
        return delta_of(method, module, factors, weights, rank)
    return svd_dense(delta_of(method, module, factors, weights), rank, name=f"{module}.weight")


def module_delta(
    method: MethodSpec, module: str, factors: Sequence[Factors | None], weights: Sequence[float],
    base: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """The combined ΔW of one module (float32) and the fraction of its energy the method kept; with
    `base` (W0, float32), the merged weight W0 + ΔW instead.

    linear and cat: ΔW = Σ_i w_i ΔW_i, exactly (as B A of `cat_factors`; energy 1). svd: the best
    rank-k approximation of that sum (`svd_low_rank`), energy = Σ_{j<k} σ_j² / Σ_j σ_j². The
    task-arithmetic presets: `generalized_task_arithmetic` of the true deltas (energy 1).
    """
    if method.method.low_rank:
        a, b, energy = module_factors(method, module, factors, weights, None)
        # addmm: W0 + B A in one pass over the output, not a product and then a sum
        return (torch.mm(b, a) if base is None else torch.addmm(base, b, a)), energy
    delta = method.method.load_delta()(method, module, factors, weights)
    return (delta if base is None else delta.add_(base)), 1.0
