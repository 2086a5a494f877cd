"""What a careless PyTorch user does to gradient fitting, the ``mixtorch.nn`` modules and
the Pyro estimators: optimisers built on the wrong tensors, absurd learning rates,
reduced-precision and meta modules, edited state dicts, degenerate data. Each mistake
gets a clear error of scikit-learn's kind naming the parameter, never NaN or a torch
internal error."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from mixtorch import Mixture
from mixtorch.exceptions import DivergenceError
from mixtorch.fit.gradient import fit_gradient, make_optimizer
from mixtorch.nn import GaussianMixtureModule, GaussianModule

X64 = torch.as_tensor(np.random.default_rng(0).normal(size=(40, 2)))
START = Mixture.from_parameters(
    [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [np.eye(2), np.eye(2)], "full", dtype=torch.float64
)


def _bayes():
    pytest.importorskip("pyro")
    import mixtorch.bayes

    return mixtorch.bayes


# -- fit_gradient: the optimiser ----------------------------------------------------------
def test_an_optimiser_built_on_other_tensors_is_refused():
    """It left the start untouched and reported convergence."""

    def elsewhere(params, lr):
        return torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=lr)

    with pytest.raises(ValueError, match="optimizer built an optimiser that leaves 3 of the 3"):
        fit_gradient(X64, START, optimizer=elsewhere, max_iter=40)


def test_an_optimiser_without_the_lr_keyword_or_an_instance_is_explained():
    with pytest.raises(TypeError, match=r"called as optimizer\(params, lr=learning_rate\)"):
        fit_gradient(X64, START, optimizer=lambda params: torch.optim.Adam(params), max_iter=2)
    instance = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match=r"pass its class \(torch.optim.SGD\)"):
        fit_gradient(X64, START, optimizer=instance, max_iter=2)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_lbfgs_with_a_huge_learning_rate_is_a_divergence_not_a_linalg_error(covariance_type):
    """L-BFGS steps left finite factors whose L L^T + reg_covar I no longer factored."""
    start = START if covariance_type == "full" else Mixture.from_parameters(
        [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], np.eye(2), "tied", dtype=torch.float64
    )  # fmt: skip
    with pytest.raises(DivergenceError, match="Lower learning_rate"):
        fit_gradient(X64, start, optimizer="lbfgs", learning_rate=1e3, max_iter=20)


@pytest.mark.parametrize(("optimizer", "suggests_adam"), [("sgd", True), ("adam", False)])
def test_divergence_advice_names_adam_only_when_another_optimiser_ran(optimizer, suggests_adam):
    with pytest.raises(DivergenceError, match="Lower learning_rate") as caught:
        fit_gradient(X64, START, optimizer=optimizer, learning_rate=1e6, max_iter=5)
    assert ("optimizer='adam'" in str(caught.value)) is suggests_adam


# -- fit_gradient: the other arguments ----------------------------------------------------
@pytest.mark.parametrize(
    "arguments, error, fragment",
    [
        ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
        ({"max_iter": None}, TypeError, "max_iter must be an integer"),
        ({"patience": 2.5}, TypeError, "patience must be an integer"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size must be an integer"),
        ({"tol": "small"}, TypeError, "tol must be a finite number"),
        ({"learning_rate": True}, TypeError, "learning_rate must be a finite number"),
        ({"generator": 5}, TypeError, "generator must be a torch.Generator"),
        ({"fixed": "means"}, TypeError, "fixed must be a collection of group names"),
        ({"fixed": ["weight"]}, ValueError, r"fixed may only contain .*'weight'"),
        ({"X": X64.numpy()}, TypeError, "X must be a torch.Tensor"),
        ({"X": torch.zeros(5, 2, device="meta")}, ValueError, "X is a tensor on the 'meta'"),
        ({"X": X64.half()}, ValueError, "X must be float32 or float64"),
        ({"initial": "full"}, TypeError, "initial must be a mixtorch.Mixture"),
    ],
)
def test_fit_gradient_arguments_of_the_wrong_kind(arguments, error, fragment):
    """A float was truncated (batch_size=2.5 ran with 2), a misspelt or string ``fixed``
    fixed nothing, the rest failed inside torch or Python."""
    call = {"X": X64, "initial": START, "max_iter": 2, **arguments}
    with pytest.raises(error, match=fragment):
        fit_gradient(call.pop("X"), call.pop("initial"), **call)


def test_numpy_float32_learning_rate_is_a_number():
    """It was refused ('learning_rate must be a positive number, got np.float32(0.1)')."""
    mixture, _ = fit_gradient(X64, START, learning_rate=np.float32(0.1), max_iter=3)
    reference, _ = fit_gradient(X64, START, learning_rate=float(np.float32(0.1)), max_iter=3)
    assert torch.equal(mixture.means, reference.means)


# -- mixtorch.nn modules ------------------------------------------------------------------
def _exact_log_density(factor, reg_covar, rows):
    """log N(x | 0, L L^T + reg_covar I) of a 2 x 2 lower ``factor``, in exact rationals."""
    (a, _), (b, c) = [[Fraction(value) for value in row] for row in factor]
    ridge = Fraction(reg_covar)
    s11, s12, s22 = a * a + ridge, a * b, b * b + c * c + ridge
    determinant = s11 * s22 - s12 * s12
    values = []
    for x1, x2 in rows:
        x1, x2 = Fraction(x1), Fraction(x2)
        quadratic = (s22 * x1 * x1 - 2 * s12 * x1 * x2 + s11 * x2 * x2) / determinant
        values.append(-0.5 * float(quadratic) - 0.5 * math.log(determinant) - math.log(2 * math.pi))
    return values


def test_a_factor_of_very_different_scales_with_reg_covar_keeps_an_exact_density():
    """The Cholesky factorisation of L L^T + reg_covar I failed (torch's LinAlgError) for
    finite parameters like these, though the matrix is positive definite."""
    module = GaussianMixtureModule(1, 2, reg_covar=1e-6, dtype=torch.float64)
    with torch.no_grad():
        module.means.zero_()
        module.raw_cholesky.copy_(torch.tensor([[[20.0, 0.0], [2.25e11, 2.0]]]))
    assert torch.linalg.cholesky_ex(module.covariances())[1].item() != 0  # the failing case
    rows = [[0.0, 0.0], [1.0, 2.0], [-3e4, 5e15]]
    values = module.log_prob(torch.tensor(rows, dtype=torch.float64))
    factor = module.cholesky_factor()[0].tolist()
    np.testing.assert_allclose(
        values.detach().numpy(), _exact_log_density(factor, 1e-6, rows), rtol=1e-9
    )
    values.sum().backward()
    assert bool(torch.isfinite(module.raw_cholesky.grad).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_reduced_precision_modules_compute_and_convert(dtype, covariance_type):
    """'full'/'tied' modules after .half() raised torch's NotImplementedError; a bfloat16
    module's to_estimator failed in NumPy and a float16 one built a float16 estimator."""
    module = GaussianMixtureModule(
        2, 3, covariance_type, reg_covar=0.01, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    expected = module.log_prob(x).detach()
    reduced = module.to(dtype)
    values = reduced.log_prob(x.to(dtype))
    assert values.dtype == dtype
    torch.testing.assert_close(values.float().detach(), expected, rtol=0.03, atol=0.05)
    values.sum().backward()
    assert reduced.raw_cholesky.grad.dtype == dtype
    estimator = reduced.to_estimator()
    assert estimator.means_.dtype == np.float32
    np.testing.assert_allclose(estimator.score_samples(x.numpy()), expected, rtol=0.03, atol=0.05)


@pytest.mark.parametrize("method", ["to_mixture", "to_estimator", "to_torch"])
@pytest.mark.parametrize("module_class", [GaussianMixtureModule, GaussianModule])
def test_meta_modules_say_they_hold_no_values(method, module_class):
    """'Tensor.item() cannot be called on meta tensors' (a RuntimeError) before."""
    module = module_class(2, 3) if module_class is GaussianMixtureModule else module_class(3)
    module = module.to("meta")
    with pytest.raises(ValueError, match=f"{method} needs parameter values.*meta.*to_empty"):
        getattr(module, method)()


def test_load_state_dict_refuses_nan_and_keeps_the_parameters():
    module = GaussianMixtureModule(2, 3, generator=torch.Generator().manual_seed(0))
    before = {name: value.clone() for name, value in module.state_dict().items()}
    edited = dict(before)
    edited["raw_cholesky"] = before["raw_cholesky"].clone()
    edited["raw_cholesky"][0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="'raw_cholesky' holds NaN or infinity"):
        module.load_state_dict(edited)
    assert all(torch.equal(module.state_dict()[name], before[name]) for name in before)
    wrapper = torch.nn.Sequential(GaussianModule(3))
    state = wrapper.state_dict()
    state["0.means"] = torch.full((1, 3), float("inf"))
    with pytest.raises(ValueError, match="'0.means' holds NaN or infinity"):
        wrapper.load_state_dict(state)
    module.load_state_dict(before)  # finite values still load


@pytest.mark.parametrize("value", [-1.0, float("nan"), "0.1"])
def test_assigning_reg_covar_is_checked(value):
    """A negative or NaN reg_covar assigned later made every density a LinAlgError."""
    module = GaussianMixtureModule(2, 3, reg_covar=0.1)
    with pytest.raises(ValueError, match="reg_covar must be a non-negative finite number"):
        module.reg_covar = value
    assert module.reg_covar == 0.1
    module.reg_covar = 0.5
    assert torch.allclose(
        module.covariances()[0], torch.eye(3) * 1.5
    )  # identity factor plus the new reg_covar


# -- Pyro estimators and priors -----------------------------------------------------------
@pytest.mark.parametrize("guide", ["map", "mean_field"])
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_svi_with_a_diverging_learning_rate_says_so(guide, covariance_type):
    """Pyro's 'Expected parameter log_factor ... Unit(log_factor: nan)' before."""
    bayes = _bayes()
    model = bayes.SVIGaussianMixture(
        2,
        covariance_type=covariance_type,
        guide=guide,
        num_steps=30,
        num_restarts=1,
        num_samples=3,
        learning_rate=1e6,
        random_state=0,
    )
    with pytest.raises(DivergenceError, match="SVI diverged at step .*Lower learning_rate"):
        model.fit(X64.numpy())
    assert not hasattr(model, "means_")


@pytest.mark.parametrize("estimator", ["SVIGaussianMixture", "MCMCGaussianMixture"])
def test_constant_features_are_named_before_sampling(estimator):
    """SVI raised Pyro's NaN error, NUTS 'cannot find valid initial params'."""
    bayes = _bayes()
    X = np.column_stack([np.arange(10.0), np.ones(10)])
    options = {"num_samples": 3, "random_state": 0}
    if estimator == "SVIGaussianMixture":
        options.update(num_steps=2, num_restarts=1)
    else:
        options.update(warmup_steps=2, num_chains=1, jit_compile=False)
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] of X are constant.*scale_prior"):
        getattr(bayes, estimator)(2, **options).fit(X)


@pytest.mark.parametrize(
    "X, arguments, error, fragment",
    [
        (X64 * 1e200, {}, ValueError, "overflows; rescale X"),
        (torch.tensor([[0.0, float("nan")], [1.0, 2.0]]), {}, ValueError, "only finite values"),
        (X64.numpy(), {}, TypeError, "X must be a 2-D floating-point torch.Tensor"),
        (X64, {"covariance_type": "tied"}, ValueError, "covariance_type must be one of"),
        (X64, {"mean_prior": [1.0, 2.0, 3.0]}, ValueError, r"mean_prior must be .*\(2,\)"),
    ],
)
def test_make_prior_refuses_what_would_make_nan_or_fail_later(X, arguments, error, fragment):
    """NaN or infinite defaults, an unknown covariance_type and a non-tensor went through
    (or failed inside torch)."""
    bayes = _bayes()
    with pytest.raises(error, match=fragment):
        bayes.make_prior(X, **arguments)


def test_make_prior_takes_numpy_scalars_and_explicit_priors_for_constant_features():
    bayes = _bayes()
    X = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, 4.0]], dtype=torch.float64)
    prior = bayes.make_prior(
        X, weight_concentration=np.float32(0.5), mean_prior_scale=1.0, scale_prior=2.0
    )
    assert prior.weight_concentration == 0.5
    assert prior.mean_loc.tolist() == [1.0, 2.0]
    assert prior.scale_scale.tolist() == [2.0, 2.0]


def test_make_prior_knows_the_families_covariance_types():
    # make_prior lists the kinds itself (the families' module imports it)
    from mixtorch.bayes._components import COMPONENT_FAMILIES
    from mixtorch.bayes.prior import COVARIANCE_TYPES

    assert tuple(COMPONENT_FAMILIES) == COVARIANCE_TYPES


def test_a_component_switched_off_by_a_minus_inf_logit_loads():
    module = GaussianMixtureModule(3, 2, covariance_type="full", dtype=torch.float64)
    with torch.no_grad():
        module.logits[2] = -math.inf
    fresh = GaussianMixtureModule(3, 2, covariance_type="full", dtype=torch.float64)
    fresh.load_state_dict(module.state_dict())
    np.testing.assert_allclose(fresh.to_mixture().weights.numpy(), [0.5, 0.5, 0.0])
    every = {"logits": torch.full((3,), -math.inf, dtype=torch.float64)}
    with pytest.raises(ValueError, match="'logits' holds NaN or infinity"):
        fresh.load_state_dict({**module.state_dict(), **every})


def test_an_optimiser_factory_may_take_parameter_groups():
    weight = torch.zeros(2, requires_grad=True)
    built = make_optimizer(torch.optim.SGD, [{"params": [weight]}], 0.1)
    assert built.param_groups[0]["params"][0] is weight


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_half_module_gives_a_float32_distribution(covariance_type):
    module = GaussianMixtureModule(3, 2, covariance_type=covariance_type, reg_covar=1e-3)
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    distribution = module.half().to_torch()
    assert distribution.mean.dtype == torch.float32
    with torch.no_grad():
        expected = module.float().to_torch().log_prob(x)
        np.testing.assert_allclose(distribution.log_prob(x), expected, atol=0.02)


def test_a_float32_factor_of_moderate_spread_keeps_its_small_directions():
    # A Cholesky factorisation of L L^T + reg_covar I in float32 "succeeded" here and gave
    # -951 nats; the QR of [L^T; sqrt(reg_covar) I] keeps float64's answer
    raw = torch.tensor([[3.26, 0.0, 0.0], [-2.72, -4.37, 0.0], [3.26, -3.34, -2.95]])
    modules = {}
    for dtype in (torch.float32, torch.float64):
        module = GaussianMixtureModule(1, 3, reg_covar=1e-6, dtype=dtype)
        with torch.no_grad():
            module.raw_cholesky[0] = raw.to(dtype)
            module.means.zero_()
        modules[dtype] = module
    x = torch.full((1, 3), 0.01)
    with torch.no_grad():
        single = float(modules[torch.float32].log_prob(x)[0])
        double = float(modules[torch.float64].log_prob(x.double())[0])
    assert double == pytest.approx(-58.765, abs=1e-3)
    assert single == pytest.approx(double, abs=1e-3)
