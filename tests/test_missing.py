"""EM with missing entries against brute-force observed-data likelihoods (SciPy, autograd)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mixtorch import GaussianMixture, Mixture
from mixtorch.fit.em import fit_em
from mixtorch.fit.missing import missing_statistics, observed_weighted_log_prob
from mixtorch.stats import accumulate_statistics

KINDS = ["full", "tied", "diag", "spherical"]


def _data(missing: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    X = np.concatenate([rng.normal(size=(300, 3)) @ mixing + c for c in ([0, 0, 0], [5, 5, -3])])
    holes = X.copy()
    holes[rng.random(X.shape) < missing] = np.nan
    holes[0] = np.nan  # one row with nothing observed
    return X, holes


def _start(kind: str, X: np.ndarray) -> Mixture:
    model = GaussianMixture(2, covariance_type=kind, random_state=0, max_iter=1, tol=0)
    with pytest.warns(Warning):
        return model.fit(np.nan_to_num(X)).mixture_


def _observed_log_likelihood(mixture: Mixture, X: np.ndarray) -> float:
    K = mixture.n_components
    S = mixture.covariance.full_matrices(K).numpy()
    mu, w = mixture.means.numpy(), mixture.weights.numpy()
    total = 0.0
    for row in X:
        seen = ~np.isnan(row)
        if seen.any():
            total += logsumexp(
                [
                    np.log(w[k])
                    + multivariate_normal(mu[k][seen], S[k][np.ix_(seen, seen)]).logpdf(row[seen])
                    for k in range(K)
                ]
            )
    return total


@pytest.mark.parametrize("kind", KINDS)
def test_without_missing_entries_the_statistics_are_the_complete_data_ones(kind):
    X, _ = _data()
    start = _start(kind, X)
    tensor = torch.as_tensor(X)
    complete = accumulate_statistics(start, [tensor])
    expected = missing_statistics(start, [tensor])
    a = complete.m_step(type(start.covariance), 1e-6, torch.float64)
    b = expected.m_step(type(start.covariance), 1e-6, torch.float64)
    torch.testing.assert_close(a.means, b.means)
    torch.testing.assert_close(a.covariance.covariances, b.covariance.covariances)
    torch.testing.assert_close(complete.log_likelihood, expected.log_likelihood)


@pytest.mark.parametrize("kind", KINDS)
def test_em_increases_the_observed_likelihood_and_scores_match_scipy(kind):
    _, holes = _data()
    tensor = torch.as_tensor(holes)
    mixture, trace = fit_em(
        lambda: [tensor[:250], tensor[250:]],
        _start(kind, holes),
        statistics=missing_statistics,
        max_iter=300,
        tol=1e-9,
    )
    assert trace.converged
    assert np.all(np.diff(trace.lower_bounds) >= -1e-10)
    ours = torch.logsumexp(observed_weighted_log_prob(mixture, tensor), 1)
    assert abs(float(ours[0])) < 1e-12  # nothing observed: the empty marginal has density one
    assert float(ours.sum()) == pytest.approx(_observed_log_likelihood(mixture, holes), rel=1e-10)
    assert trace.lower_bounds[-1] * len(holes) == pytest.approx(float(ours.sum()), rel=1e-6)


def test_fixed_point_is_stationary_for_the_observed_likelihood():
    # An independent check of the E-step: at EM's fixed point the gradient of the
    # observed-data log-likelihood (autograd through per-row marginals) vanishes.
    _, holes = _data(missing=0.4, seed=3)
    tensor = torch.as_tensor(holes)
    mixture, _ = fit_em(
        lambda: [tensor],
        _start("full", holes),
        statistics=missing_statistics,
        max_iter=2000,
        tol=1e-13,
        reg_covar=0.0,
    )
    means = mixture.means.clone().requires_grad_(True)
    covs = mixture.covariance.covariances
    total = torch.zeros((), dtype=torch.float64)
    for row in tensor:
        seen = ~torch.isnan(row)
        if not bool(seen.any()):
            continue
        idx = torch.nonzero(seen).flatten()
        parts = [
            torch.log(mixture.weights[k])
            + torch.distributions.MultivariateNormal(means[k, idx], covs[k][idx][:, idx]).log_prob(
                row[idx]
            )
            for k in range(2)
        ]
        total = total + torch.logsumexp(torch.stack(parts), 0)
    (gradient,) = torch.autograd.grad(total, means)
    assert float(gradient.abs().max()) < 1e-5


def test_float32_missing_statistics_on_offset_data():
    X, holes = _data()
    shifted = holes + 1e4
    start64 = _start("full", X + 1e4)
    stats64 = missing_statistics(start64, [torch.as_tensor(shifted)])
    stats32 = missing_statistics(
        start64.to(dtype=torch.float32), [torch.as_tensor(shifted).float()]
    )
    m64 = stats64.m_step(type(start64.covariance), 1e-6, torch.float64)
    m32 = stats32.m_step(type(start64.covariance), 1e-6, torch.float32)
    torch.testing.assert_close(m32.means.double(), m64.means, atol=1e-2, rtol=0)
    torch.testing.assert_close(
        m32.covariance.covariances.double(), m64.covariance.covariances, rtol=1e-3, atol=1e-3
    )


def test_estimator_fits_and_scores_rows_with_missing_entries():
    X, holes = _data()
    model = GaussianMixture(2, missing_values=np.nan, random_state=0, tol=1e-8, max_iter=500)
    labels = model.fit_predict(holes)
    assert model.converged_
    np.testing.assert_array_equal(labels, model.predict(holes))
    reference = _observed_log_likelihood(model.mixture_, holes) / len(holes)
    assert model.score(holes) == pytest.approx(reference, rel=1e-10)
    proba = model.predict_proba(holes)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_allclose(proba[0], model.weights_)  # nothing observed: the prior
    # complete rows score exactly as a model without missing_values would
    plain = GaussianMixture.from_parameters(
        model.weights_, model.means_, model.covariances_, covariance_type="full"
    )
    np.testing.assert_allclose(model.score_samples(X[:20]), plain.score_samples(X[:20]))
    # the clusters are found despite 30% holes
    truth = np.repeat([0, 1], 300)
    assert max((labels == truth).mean(), (labels != truth).mean()) > 0.97


def test_missing_values_default_keeps_nan_an_error_and_rejects_infinity():
    _, holes = _data()
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(holes)
    bad = holes.copy()
    bad[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, missing_values=np.nan).fit(bad)
    with pytest.raises(ValueError, match="algorithm='em'"):
        GaussianMixture(2, missing_values=np.nan, algorithm="gradient").fit(holes)
    with pytest.raises(ValueError, match="missing_values must be None or np.nan"):
        GaussianMixture(2, missing_values=0.0).fit(holes)


def test_tensor_input_with_missing_entries_stays_a_tensor():
    _, holes = _data()
    tensor = torch.as_tensor(holes, dtype=torch.float32)
    model = GaussianMixture(2, missing_values=float("nan"), random_state=0).fit(tensor)
    scores = model.score_samples(tensor)
    assert isinstance(scores, torch.Tensor) and bool(torch.isfinite(scores).all())


def test_gradient_fits_of_sources_with_missing_values_are_refused_clearly():
    from mixtorch.sources import from_tensor

    _, holes = _data()
    source = from_tensor(torch.as_tensor(holes), 100)
    with pytest.raises(ValueError, match="algorithm='em'"):
        GaussianMixture(2, missing_values=np.nan, algorithm="gradient").fit(source)


def test_a_feature_never_observed_is_refused_naming_it():
    """No parameter of an all-NaN column can be estimated: an error, not a made-up value."""
    X = np.random.default_rng(0).normal(size=(60, 3))
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] have no observed value"):
        GaussianMixture(2, missing_values=np.nan, random_state=0).fit(X)
