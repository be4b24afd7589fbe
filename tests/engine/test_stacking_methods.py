"""The stacking math against values worked out by hand on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from workers.engine.methods import MethodSpec
from workers.engine.stacking import (
    Factors,
    adapter_rank,
    cat_factors,
    generalized_task_arithmetic,
    module_delta,
    module_factors,
    module_seed,
    svd_dense,
    svd_low_rank,
)

# Two hand-checkable task vectors and weights, used by most tests below.
D1 = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
D2 = torch.tensor([[-1.0, -2.0], [1.0, -4.0]])
W = [1.0, 0.5]


def gta(deltas: list[torch.Tensor | None], weights: list[float], preset: str, **overrides: object) -> torch.Tensor:
    knobs = MethodSpec.parse({"name": preset, "params": overrides}).knobs
    return generalized_task_arithmetic(deltas, weights, module="m", **knobs)


def assert_close(actual: torch.Tensor, expected: list[list[float]]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected), rtol=0, atol=1e-6)


def test_task_arithmetic_is_the_weighted_sum() -> None:
    # D1 + 0.5 D2 = [[2 - 0.5, -1 - 1], [0.5 + 0.5, 3 - 2]]
    assert_close(gta([D1, D2], W, "task_arithmetic"), [[1.5, -2.0], [1.0, 1.0]])


def test_task_arithmetic_lambda_and_normalize() -> None:
    assert_close(gta([D1, D2], W, "task_arithmetic", **{"lambda": 2.0}), [[3.0, -4.0], [2.0, 2.0]])
    # divided by Σw = 1.5
    assert_close(gta([D1, D2], W, "task_arithmetic", normalize=True), [[1.0, -4 / 3], [2 / 3, 2 / 3]])


def test_an_adapter_absent_from_a_module_counts_as_a_zero_delta() -> None:
    # normalize without consensus divides by Σw over all adapters: (D1 + 0) / 2
    assert_close(gta([D1, None], [1.0, 1.0], "task_arithmetic", normalize=True), [[1.0, -0.5], [0.25, 1.5]])


def test_magnitude_prune_keeps_the_largest_entries() -> None:
    # density 0.5 keeps 2 of 4 entries: D1 -> [[2, 0], [0, 3]], D2 -> [[0, -2], [0, -4]]
    # D1' + 0.5 D2' = [[2, -1], [0, 3 - 2]]
    assert_close(gta([D1, D2], W, "magnitude_prune", density=0.5), [[2.0, -1.0], [0.0, 1.0]])


def test_magnitude_prune_with_l1_rescale() -> None:
    # D1: |D1|₁ = 6.5, kept 5 -> x1.3: [[2.6, 0], [0, 3.9]];  D2: 8 / 6 -> [[0, -8/3], [0, -16/3]]
    # D1' + 0.5 D2' = [[2.6, -4/3], [0, 3.9 - 8/3]]
    expected = [[2.6, -4 / 3], [0.0, 3.9 - 8 / 3]]
    assert_close(gta([D1, D2], W, "magnitude_prune", density=0.5, rescale=True), expected)


def test_ties_trims_elects_and_averages_the_agreeing() -> None:
    # trimmed as above; τ1 = [[2, 0], [0, 3]], τ2 = 0.5 D2' = [[0, -1], [0, -2]]
    # elected sign of τ1 + τ2 = [[2, -1], [0, 1]] -> [[+, -], [+, +]]
    # agreeing: τ1 at (0,0), (1,1); τ2 at (0,1); nothing at (1,0)
    # Σ agreeing τ = [[2, -1], [0, 3]], Σ agreeing w = [[1, 0.5], [0 -> 1, 1]]
    assert_close(gta([D1, D2], W, "ties", density=0.5), [[2.0, -2.0], [0.0, 3.0]])


def test_sign_consensus_sum_against_count() -> None:
    a, b, c = torch.tensor([[4.0, 1.0]]), torch.tensor([[-1.0, 1.0]]), torch.tensor([[-1.0, -3.0]])
    # sum: votes [2, -1] -> [+, -]; agreeing a[0] and c[1] -> [4, -3], one weight each
    assert_close(gta([a, b, c], [1.0] * 3, "ties", density=1.0), [[4.0, -3.0]])
    # count: sign sums [-1, 1] -> [-, +]; agreeing b[0], c[0] and a[1], b[1] -> [-2, 2] / 2
    assert_close(gta([a, b, c], [1.0] * 3, "ties", density=1.0, consensus="count"), [[-1.0, 1.0]])


def dare_masks(seed: int, shape: tuple[int, ...], density: float, count: int) -> list[torch.Tensor]:
    """The masks DARE draws for module "m": one generator per (seed, module), adapters in order."""
    generator = torch.Generator().manual_seed(module_seed(seed, "m"))
    return [torch.rand(shape, generator=generator) < density for _ in range(count)]


def test_dare_linear_drops_at_random_and_rescales_by_l1() -> None:
    delta = torch.linspace(-1.0, 2.0, 200).reshape(10, 20)
    result = gta([delta], [2.0], "dare_linear", density=0.3, seed=7)
    (mask,) = dare_masks(7, (10, 20), 0.3, 1)
    kept = delta * mask
    expected = 2.0 * kept * (delta.abs().sum() / kept.abs().sum())
    torch.testing.assert_close(result, expected)
    assert 0.2 < mask.float().mean() < 0.4


def test_dare_ties_is_ties_on_the_dropped_deltas() -> None:
    generator = torch.Generator().manual_seed(0)
    d1, d2 = torch.randn(8, 6, generator=generator), torch.randn(8, 6, generator=generator)
    result = gta([d1, d2], [1.0, 0.5], "dare_ties", density=0.5, seed=3)
    m1, m2 = dare_masks(3, (8, 6), 0.5, 2)
    t1 = d1 * m1 * (d1.abs().sum() / (d1 * m1).abs().sum())
    t2 = 0.5 * d2 * m2 * (d2.abs().sum() / (d2 * m2).abs().sum())
    elected = torch.where(t1 + t2 >= 0, 1.0, -1.0)
    expected = t1 * (t1.sign() == elected) + t2 * (t2.sign() == elected)  # no normalize by default
    torch.testing.assert_close(result, expected)


def test_dare_is_reproducible_from_its_seed_and_order_free() -> None:
    deltas = [torch.randn(16, 16, generator=torch.Generator().manual_seed(i)) for i in range(2)]

    def run(module: str, seed: int) -> torch.Tensor:
        knobs = MethodSpec.parse({"name": "dare_ties", "params": {"density": 0.4, "seed": seed}}).knobs
        return generalized_task_arithmetic(deltas, [1.0, 1.0], module=module, **knobs)

    first_a, first_b = run("a", 1), run("b", 1)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(run("b", 1), first_b) and torch.equal(run("a", 1), first_a)
    assert not torch.equal(run("a", 2), first_a)
    assert not torch.equal(first_a, first_b)  # each module has its own stream


def factors(seed: int, rank: int, out: int = 6, inp: int = 5, scale: float = 2.0) -> Factors:
    generator = torch.Generator().manual_seed(seed)
    return Factors(a=torch.randn(rank, inp, generator=generator), b=torch.randn(out, rank, generator=generator), scale=scale)


def test_true_delta_and_cat_factors_are_the_linear_sum() -> None:
    f = Factors(a=torch.tensor([[1.0, 2.0]]), b=torch.tensor([[3.0], [-1.0]]), scale=0.5)
    assert_close(f.delta(), [[1.5, 3.0], [-0.5, -1.0]])  # 0.5 · [[3], [-1]] @ [[1, 2]]
    f1, f2 = factors(1, 2), factors(2, 3, scale=0.25)
    a, b = cat_factors([f1, None, f2], [0.7, 9.0, -1.5])
    assert a.shape == (5, 5) and b.shape == (6, 5)
    torch.testing.assert_close(b @ a, 0.7 * f1.delta() - 1.5 * f2.delta())
    linear = module_delta(MethodSpec("linear", {}), "m", [f1, None, f2], [0.7, 9.0, -1.5])
    torch.testing.assert_close(linear[0], b @ a)


def test_svd_energy_on_a_hand_checked_matrix() -> None:
    a, b, energy = svd_dense(torch.diag(torch.tensor([3.0, 4.0, 0.0])), 1)
    assert energy == pytest.approx(16 / 25)  # keeps the 4, drops the 3: 16 / (9 + 16)
    assert_close(b @ a, [[0.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 0.0]])


def test_low_rank_svd_agrees_with_dense_svd_and_keeps_everything_at_full_rank() -> None:
    a, b = cat_factors([factors(1, 2), factors(2, 2)], [1.0, 1.0])  # rank 4
    dense = b @ a
    for rank in (1, 2, 3):
        low = svd_low_rank(a, b, rank)
        ref = svd_dense(dense, rank)
        torch.testing.assert_close(low[1] @ low[0], ref[1] @ ref[0], atol=1e-5, rtol=1e-5)
        assert low[2] == pytest.approx(ref[2], abs=1e-6) and low[2] < 1.0
    a4, b4, energy = svd_low_rank(a, b, 8)
    assert energy == 1.0 and a4.shape == (4, 5)
    torch.testing.assert_close(b4 @ a4, dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("method", "rank"),
    [("linear", None), ("cat", 3), ("svd", None), ("svd", 2), ("ties", 4), ("dare_linear", 9), ("task_arithmetic", 1)],
)
def test_adapter_rank_predicts_the_factor_shapes(method: str, rank: int | None) -> None:
    params = {"svd": {"rank": 3}, "ties": {"density": 0.5}, "dare_linear": {"density": 0.5}}.get(method, {})
    spec = MethodSpec.parse({"name": method, "params": params})
    present = [factors(1, 2), None, factors(3, 4)]
    a, b, energy = module_factors(spec, "m", present, [1.0, 1.0, 0.5], rank)
    expected = adapter_rank(spec, [2, 4], (6, 5), rank)
    assert a.shape == (expected, 5) and b.shape == (6, expected)
    assert 0.0 < energy <= 1.0
