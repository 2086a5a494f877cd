"""The kernels' matrix products: oneDNN's float32 products against float64 references,
when they are used, and that E-step and scoring results do not depend on the choice."""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from mixtorch import GaussianMixture
from mixtorch.estep import DiagKernel, QuadraticFullKernel, _diag, _full, _products
from mixtorch.estep._products import (
    ONEDNN_MIN_MULTIPLY_ADDS,
    _intel_processor,
    _mkl_is_tuned_here,
    _onednn_works,
    onednn_log_prob_products,
    onednn_products,
    product,
)
from mixtorch.stats import accumulate_statistics

CPU = torch.device("cpu")

# (left, right) as the kernels hold them: the full kernel's coefficients times its
# (block rows, rows) block and the block times responsibilities; the diag kernel's
# coefficients times its (rows, 2D) block transposed and responsibilities times the block.
SHAPES = {
    "full log-probabilities": lambda g: (rand(g, 16, 160), rand(g, 160, 3000)),
    "full moments": lambda g: (rand(g, 160, 3000), rand(g, 16, 3000).T),
    "diag log-probabilities": lambda g: (rand(g, 16, 32), rand(g, 5000, 32).T),
    "diag moments": lambda g: (rand(g, 16, 5000), rand(g, 5000, 32)),
}


@contextlib.contextmanager
def mkldnn_disabled() -> Iterator[None]:
    """``torch.backends.mkldnn.enabled = False`` for a block (its ``flags`` context warns
    about TF32 on builds without Intel GPU support)."""
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = before


def rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


@pytest.mark.parametrize("shape", SHAPES)
def test_products_are_within_the_float32_bound(shape):
    left, right = SHAPES[shape](torch.Generator().manual_seed(0))
    exact = left.double() @ right.double()
    # The textbook bound for a sum of P products in float32: |error| <= P u |A| |B|.
    bound = left.shape[1] * torch.finfo().eps / 2 * (left.double().abs() @ right.double().abs())
    for onednn in (False, True):
        got = product(left, right, onednn=onednn)
        assert got.shape == exact.shape and got.dtype == torch.float32
        assert bool(((got.double() - exact).abs() <= bound).all())
    if torch.backends.mkldnn.is_available() and _onednn_works():
        # and much closer than the bound in practice (a bfloat16 product would not be)
        error = (product(left, right, onednn=True).double() - exact).abs().max()
        assert error <= 1e-5 * exact.abs().max()


def test_onednn_is_taken_only_where_it_keeps_float32_precision():
    assert not onednn_products(torch.float64, CPU)
    assert not onednn_products(torch.float16, CPU)
    assert not onednn_products(torch.float32, torch.device("meta"))
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # bfloat16 products allowed
        assert not onednn_products(torch.float32, CPU)
    finally:
        torch.set_float32_matmul_precision(before)
    with mkldnn_disabled():
        assert not onednn_products(torch.float32, CPU)
    available = torch.backends.mkldnn.is_available() and _onednn_works()
    assert onednn_products(torch.float32, CPU) == available
    assert onednn_log_prob_products(torch.float32, CPU) == (available and not _mkl_is_tuned_here())


def test_log_prob_products_take_mkl_on_intel_processors(monkeypatch):
    # MKL is tuned for Intel's processors only (measured faster there on these shapes);
    # the moments' products keep oneDNN on every vendor
    available = torch.backends.mkldnn.is_available() and _onednn_works()
    monkeypatch.setattr(_products, "_intel_processor", lambda: True)
    assert onednn_log_prob_products(torch.float32, CPU) == (
        available and not torch.backends.mkl.is_available()
    )
    assert onednn_products(torch.float32, CPU) == available
    monkeypatch.setattr(_products, "_intel_processor", lambda: False)
    assert onednn_log_prob_products(torch.float32, CPU) == available
    assert not onednn_log_prob_products(torch.float64, CPU)


def test_the_vendor_is_read_from_the_processor():
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as lines:
            vendor = next((line for line in lines if line.startswith("vendor_id")), None)
    except OSError:
        vendor = None
    if vendor is None:  # not Linux x86: the processor string
        assert _intel_processor() == ("GenuineIntel" in platform.processor())
    else:
        assert _intel_processor() == ("GenuineIntel" in vendor)


def test_inputs_onednn_cannot_take_go_to_torch_mm():
    g = torch.Generator().manual_seed(1)
    left, right = rand(g, 8, 40), rand(g, 40, 300)
    cases = [
        (left.double(), right.double()),  # float64
        (rand(g, 40, 8).T, right),  # left not contiguous
        (left.clone().requires_grad_(), right),  # a gradient is needed
    ]
    for a, b in cases:
        got = product(a, b, onednn=True)
        assert torch.equal(got, torch.mm(a, b))
        assert got.requires_grad == a.requires_grad


def test_switches_flipped_after_the_decision_still_count(monkeypatch):
    calls = []
    real = torch.ops.mkldnn._linear_pointwise

    class Spy:
        def __getattr__(self, name):
            if name == "_linear_pointwise":
                return lambda *args: calls.append(1) or real(*args)
            return getattr(torch.ops.mkldnn, name)

    g = torch.Generator().manual_seed(2)
    left, right = rand(g, 16, 160), rand(g, 160, 3000)
    onednn = torch.backends.mkldnn.is_available() and _onednn_works()  # on Intel's too
    monkeypatch.setattr(torch.ops, "mkldnn", Spy())
    product(left, right, onednn)
    assert len(calls) == int(onednn)
    calls.clear()
    with mkldnn_disabled():
        assert torch.equal(product(left, right, onednn), torch.mm(left, right))
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        product(left, right, onednn)
    finally:
        torch.set_float32_matmul_precision(before)
    assert calls == []


def blobs(n: int, D: int, K: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3.0, (K, D))
    return (centers[rng.integers(0, K, n)] + rng.normal(size=(n, D))).astype(np.float32)


@pytest.mark.parametrize("intel", [False, True], ids=["other-vendor", "intel"])
@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_float32_kernels_agree_with_and_without_onednn(kind, intel, monkeypatch):
    X = blobs(20000, 16, 8)
    model = GaussianMixture(8, covariance_type=kind, max_iter=3, random_state=0).fit(X)
    mixture = model.mixture_
    kernel_type = QuadraticFullKernel if kind in ("full", "tied") else DiagKernel
    module = _full if kind in ("full", "tied") else _diag
    tensor = torch.from_numpy(X)
    taken = []  # products that met oneDNN's conditions

    def counting(left: torch.Tensor, right: torch.Tensor, onednn: bool) -> torch.Tensor:
        size = left.shape[0] * left.shape[1] * right.shape[1]
        taken.append(onednn and size >= ONEDNN_MIN_MULTIPLY_ADDS and left.is_contiguous())
        return product(left, right, onednn)

    monkeypatch.setattr(module, "product", counting)
    # both choices are checked on every machine where oneDNN works, whatever its vendor
    monkeypatch.setattr(_products, "_mkl_is_tuned_here", lambda: intel)

    def results() -> tuple[torch.Tensor, ...]:
        mixture.__dict__.pop("e_step_kernel", None)  # rebuilt under the current flags
        kernel = mixture.e_step_kernel
        assert isinstance(kernel, kernel_type)
        stats = accumulate_statistics(mixture, [tensor[:10000], tensor[10000:]])
        return (
            torch.tensor(kernel.onednn),
            mixture.log_prob(tensor, chunk_size=10000),
            mixture.responsibilities(tensor, chunk_size=10000),
            mixture.predict(tensor, chunk_size=10000),
            stats.log_likelihood,
            stats.counts,
            stats.sums,
            stats.scatter,
        )

    default = results()
    onednn = onednn_products(torch.float32, CPU)
    assert bool(default[0]) == onednn
    # every E-step and scoring product of this size goes to oneDNN where it is usable,
    # except the log-probabilities' on Intel's processors (MKL's addmm, not counted here)
    log_prob_onednn = onednn_log_prob_products(torch.float32, CPU)
    assert log_prob_onednn == (onednn and not intel)
    assert len(taken) == 2 + (2 + 3 * 2) * log_prob_onednn and all(taken) == onednn
    taken.clear()
    with mkldnn_disabled():
        mkl = results()
    assert not bool(mkl[0]) and not any(taken)
    mixture.__dict__.pop("e_step_kernel", None)
    np.testing.assert_allclose(default[1], mkl[1], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(default[2], mkl[2], atol=1e-5)
    assert float((default[3] != mkl[3]).double().mean()) <= 1e-3  # ties within rounding
    # Sums of n float32 terms: compared at float32 resolution of the terms' magnitude
    # (moments about the means nearly cancel, so a relative tolerance would not do).
    n, scale = X.shape[0], float(np.abs(X).max())
    for ours, theirs, magnitude in zip(
        default[4:], mkl[4:], (30.0, 1.0, scale, scale**2), strict=True
    ):
        atol = 8 * torch.finfo().eps * n * magnitude
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=atol)
