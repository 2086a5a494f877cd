"""Marginals and conditionals of mixtures against SciPy and float64 closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mixtorch import GaussianMixture, Mixture

KINDS = ["full", "tied", "diag", "spherical"]


def _fitted(kind: str, dtype: torch.dtype = torch.float64) -> Mixture:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, -2.0, 1.0, 3.0], [-3.0, 3.0, 2.0, -1.0]])
    mixing = rng.normal(size=(4, 4)) * 0.6 + np.eye(4)
    X = np.concatenate([rng.normal(size=(200, 4)) @ mixing + c for c in centres])
    model = GaussianMixture(3, covariance_type=kind, random_state=0).fit(X)
    return model.mixture_.to(dtype=dtype)


def _reference(mixture: Mixture, given: list[int], values: np.ndarray):
    """Weights, means and covariances of the conditional by dense float64 algebra."""
    K, D = mixture.n_components, mixture.n_features
    S = mixture.covariance.full_matrices(K).to(torch.float64).numpy()
    mu = mixture.means.to(torch.float64).numpy()
    w = mixture.weights.to(torch.float64).numpy()
    free = [i for i in range(D) if i not in given]
    log_w, means, covs = [], [], []
    for k in range(K):
        Sgg, Sfg = S[k][np.ix_(given, given)], S[k][np.ix_(free, given)]
        Sff = S[k][np.ix_(free, free)]
        log_w.append(np.log(w[k]) + multivariate_normal(mu[k][given], Sgg).logpdf(values))
        means.append(mu[k][free] + Sfg @ np.linalg.solve(Sgg, values - mu[k][given]))
        covs.append(Sff - Sfg @ np.linalg.solve(Sgg, Sfg.T))
    log_w = np.array(log_w)
    return np.exp(log_w - logsumexp(log_w)), np.array(means), np.array(covs)


@pytest.mark.parametrize("kind", KINDS)
def test_condition_matches_the_dense_gaussian_formulas(kind):
    mixture = _fitted(kind)
    values = np.array([1.5, -0.5])
    conditional = mixture.condition([3, 1], values)
    weights, means, covs = _reference(mixture, [3, 1], values)
    assert conditional.covariance_type == kind
    np.testing.assert_allclose(conditional.weights.numpy(), weights, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(conditional.means.numpy(), means, rtol=1e-10, atol=1e-12)
    dense = conditional.covariance.full_matrices(3).numpy()
    np.testing.assert_allclose(dense, covs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_conditional_density_is_the_joint_over_the_marginal(kind):
    # p(x_f | x_g) = p(x_f, x_g) / p(x_g): an identity that ties all three together.
    mixture = _fitted(kind)
    given, values = [0, 2], torch.tensor([0.7, 1.1], dtype=torch.float64)
    free_points = torch.tensor([[0.1, -0.4], [3.0, 2.0], [-2.0, 2.5]], dtype=torch.float64)
    joint_points = torch.empty(3, 4, dtype=torch.float64)
    joint_points[:, given] = values
    joint_points[:, [1, 3]] = free_points
    expected = mixture.log_prob(joint_points) - mixture.marginal(given).log_prob(values[None])
    got = mixture.condition(given, values).log_prob(free_points)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_marginal_matches_scipy(kind):
    mixture = _fitted(kind)
    marginal = mixture.marginal([2, 0])
    assert marginal.covariance_type == kind
    points = np.array([[0.3, 1.0], [2.0, -1.0]])
    S = mixture.covariance.full_matrices(3).numpy()
    mu, w = mixture.means.numpy(), mixture.weights.numpy()
    idx = [2, 0]
    reference = logsumexp(
        [
            np.log(w[k]) + multivariate_normal(mu[k][idx], S[k][np.ix_(idx, idx)]).logpdf(points)
            for k in range(3)
        ],
        axis=0,
    )
    np.testing.assert_allclose(marginal.log_prob(torch.as_tensor(points)).numpy(), reference)


def test_batched_conditionals_equal_one_row_at_a_time():
    mixture = _fitted("full")
    rows = torch.tensor([[0.0, 1.0], [4.0, -2.0], [-3.0, 3.0], [10.0, 10.0]], dtype=torch.float64)
    batch = mixture.conditionals([0, 1], rows)
    assert batch.means.shape == (4, 3, 2) and batch.log_weights.shape == (4, 3)
    for i, row in enumerate(rows):
        single = mixture.condition([0, 1], row)
        torch.testing.assert_close(batch.log_weights[i].exp(), single.weights)
        torch.testing.assert_close(batch.means[i], single.means)
        torch.testing.assert_close(batch.mean()[i], single.weights @ single.means)


def test_conditional_variance_and_samples_agree_with_the_law_of_total_variance():
    mixture = _fitted("full")
    batch = mixture.conditionals([0], torch.tensor([[1.0], [-1.0]], dtype=torch.float64))
    generator = torch.Generator().manual_seed(0)
    draws = batch.sample(40_000, generator)  # (2, 40000, 3)
    assert draws.shape == (2, 40_000, 3)
    torch.testing.assert_close(draws.mean(1), batch.mean(), atol=0.05, rtol=0)
    torch.testing.assert_close(draws.var(1), batch.variance(), rtol=0.05, atol=0.01)


def test_float32_conditioning_far_from_the_origin_stays_accurate():
    mixture64 = _fitted("full")
    shift = torch.full((4,), 1e4, dtype=torch.float64)
    far64 = Mixture(mixture64.weights, mixture64.means + shift, mixture64.covariance)
    far32 = far64.to(dtype=torch.float32)
    values = torch.tensor([1.5, -0.5], dtype=torch.float64) + 1e4
    c64 = far64.condition([3, 1], values)
    c32 = far32.condition([3, 1], values.float())
    torch.testing.assert_close(c32.weights.double(), c64.weights, atol=2e-3, rtol=0)
    torch.testing.assert_close(c32.means.double(), c64.means, atol=5e-2, rtol=0)


def test_estimator_marginal_and_condition_return_fitted_estimators_with_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    model = GaussianMixture(2, covariance_type="diag", random_state=0).fit(frame)
    marginal = model.marginal([2, 0])
    assert list(marginal.feature_names_in_) == ["c", "a"]
    assert marginal.covariance_type == "diag" and marginal.covariances_.shape == (2, 2)
    np.testing.assert_allclose(marginal.means_, model.means_[:, [2, 0]])
    np.testing.assert_allclose(marginal.weights_, model.weights_)
    conditional = model.condition([1], [0.5])
    assert list(conditional.feature_names_in_) == ["a", "c"]
    reference = model.mixture_.condition([1], [0.5])
    np.testing.assert_allclose(conditional.weights_, reference.weights.numpy())
    assert conditional.predict(pd.DataFrame(np.zeros((2, 2)), columns=["a", "c"])).shape == (2,)


def test_tensor_models_stay_tensors():
    X = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = GaussianMixture(2, random_state=0).fit(X)
    assert isinstance(model.condition([0], [0.0]).means_, torch.Tensor)


@pytest.mark.parametrize(
    ("features", "values", "error", "match"),
    [
        ([0, 0], [1.0, 1.0], ValueError, "repeat"),
        ([5], [1.0], ValueError, r"\[0, 4\)"),
        ([0, 1, 2, 3], [1.0, 1.0, 1.0, 1.0], ValueError, "at least one feature free"),
        ([], [], ValueError, "at least one feature"),
        (["a"], [1.0], TypeError, "integer feature indices"),
        ([0, 1], [1.0], ValueError, "2 entries per row"),
        ([0], [float("nan")], ValueError, "NaN or infinity"),
    ],
)
def test_bad_features_and_values_are_named(features, values, error, match):
    mixture = _fitted("full")
    with pytest.raises(error, match=match):
        mixture.condition(features, values)


def test_log_evidence_is_the_marginal_density_of_the_given_values():
    mixture = _fitted("tied")
    rows = torch.tensor([[0.0, 1.0], [4.0, -2.0]], dtype=torch.float64)
    batch = mixture.conditionals([2, 0], rows)
    torch.testing.assert_close(batch.log_evidence, mixture.marginal([2, 0]).log_prob(rows))


@pytest.mark.parametrize("kind", KINDS)
def test_conditionals_far_out_take_the_limit_along_the_ray(kind):
    mixture = _fitted(kind)
    given = [0, 2]
    direction = np.array([0.6, -0.8])
    near = 1e6 * direction  # squares finite: the ordinary computation
    far = 1e200 * direction  # squares overflow
    ordinary = mixture.conditionals(given, [near])
    limit = mixture.conditionals(given, [far, [0.5, 0.5]])
    weights = limit.log_weights.exp()
    # The far row: all weight on the component the ordinary computation tends to.
    np.testing.assert_array_equal(
        weights[0].numpy(), np.eye(3)[int(ordinary.log_weights[0].argmax())]
    )
    assert float(limit.log_evidence[0]) == -np.inf and bool(torch.isfinite(limit.log_evidence[1]))
    assert torch.isfinite(limit.mean()).all() and torch.isfinite(limit.variance()).all()
    k = int(ordinary.log_weights[0].argmax())
    np.testing.assert_allclose(limit.mean()[0].numpy(), limit.means[0, k].numpy(), rtol=1e-12)
    # The ordinary row is untouched by its far neighbour.
    alone = mixture.conditionals(given, [[0.5, 0.5]])
    np.testing.assert_allclose(limit.mean()[1].numpy(), alone.mean()[0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(limit.variance()[1].numpy(), alone.variance()[0].numpy(), rtol=1e-12)


def test_features_as_a_boolean_mask_select_the_true_positions():
    mixture = _fitted("full")
    by_mask = mixture.marginal([True, False, True, False])
    by_index = mixture.marginal([0, 2])
    torch.testing.assert_close(by_mask.means, by_index.means, rtol=0, atol=0)
    torch.testing.assert_close(
        mixture.marginal(np.array([False, True, True, False])).means, mixture.marginal([1, 2]).means
    )
    with pytest.raises(ValueError, match=r"needs 4 entries \(shape \(4,\).*got shape \(2,\)"):
        mixture.marginal([True, False])  # not read as the indices 1 and 0
    pd = pytest.importorskip("pandas")
    series = pd.Series([False, True, True, False])
    torch.testing.assert_close(mixture.marginal(series).means, mixture.marginal([1, 2]).means)
    with pytest.raises(ValueError, match=r"got shape \(1, 4\)"):
        mixture.marginal(np.array([[True, False, True, False]]))
    with pytest.raises(TypeError, match="boolean mask"):
        mixture.marginal(True)


def test_features_by_column_name_for_a_model_fitted_on_a_dataframe():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    values = rng.normal(size=(400, 3)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.4], [0, 0, 1]])
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    # names select what the indices select, in the order given
    by_name, by_index = model.marginal(["c", "a"]), model.marginal([2, 0])
    np.testing.assert_array_equal(by_name.means_, by_index.means_)
    assert list(by_name.feature_names_in_) == ["c", "a"]
    assert list(model.marginal(pd.Index(["b"])).feature_names_in_) == ["b"]
    given, by_position = model.condition("a", [1.0]), model.condition([0], [1.0])
    np.testing.assert_array_equal(given.means_, by_position.means_)
    np.testing.assert_array_equal(given.weights_, by_position.weights_)
    assert list(given.feature_names_in_) == ["b", "c"]
    with pytest.raises(ValueError, match=r"\['z'\] are not columns the model was fitted on"):
        model.condition(["z"], [1.0])
    plain = GaussianMixture(2, random_state=0).fit(values)
    with pytest.raises(TypeError, match="fitted without them"):
        plain.marginal(["a"])
    with pytest.raises(TypeError, match="got a set"):  # names in a set have no order either
        model.condition({"a", "b"}, [1.0, 2.0])
    # one-pass iterables are read once, whatever they hold
    np.testing.assert_array_equal(model.marginal(i for i in [2, 0]).means_, by_index.means_)
    np.testing.assert_array_equal(model.marginal(iter(["c", "a"])).means_, by_index.means_)
