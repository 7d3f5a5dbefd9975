import numpy as np
import pytest
import torch

from neuronlab.scratch import NeuralNetwork, chain_rule_example, numerical_gradients, truth_table

LOSSES = ["mse", "bce"]


def _random_problem(loss: str) -> tuple[NeuralNetwork, np.ndarray, np.ndarray]:
    """Odd sizes (3 inputs, 5 hidden, 7 samples) so that a transposed or mis-summed gradient shows up."""
    rng = np.random.default_rng(1)
    net = NeuralNetwork(n_inputs=3, n_hidden=5, loss=loss, seed=2)
    net.b1[:] = rng.normal(size=5)  # non-zero biases: their gradients must be right too
    net.b2[:] = rng.normal(size=1)
    X = rng.normal(size=(7, 3))
    y = (rng.random(7) > 0.5).astype(float)
    return net, X, y


def _rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def _torch_gradients(net: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The same forward pass and loss written in torch; autograd does the backward pass."""
    params = {k: torch.tensor(v, requires_grad=True) for k, v in net.get_params().items()}
    X_t, y_t = torch.tensor(X), torch.tensor(y)[:, None]
    h = torch.sigmoid(X_t @ params["W1"] + params["b1"])
    p = torch.sigmoid(h @ params["W2"] + params["b2"])
    if net.loss_name == "mse":
        loss = torch.mean((p - y_t) ** 2)
    else:
        loss = torch.nn.functional.binary_cross_entropy(p, y_t)
    assert loss.item() == pytest.approx(net.loss(X, y), rel=1e-12)
    loss.backward()
    return {k: v.grad.numpy() for k, v in params.items()}


@pytest.mark.parametrize("loss", LOSSES)
def test_learns_xor(loss):
    X, y = truth_table("xor")
    net = NeuralNetwork(n_hidden=4, loss=loss, seed=0)
    history = net.fit(X, y, epochs=5000, lr=1.0)
    assert len(history) == 5000
    assert history[-1] < history[0] / 10
    np.testing.assert_array_equal(net.predict(X), y)
    proba = net.predict_proba(X)
    assert proba.shape == (4,) and np.all(np.abs(proba - y) < 0.2)


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_match_central_differences(loss):
    net, X, y = _random_problem(loss)
    analytic, numerical = net.gradients(X, y), numerical_gradients(net, X, y, eps=1e-6)
    assert analytic.keys() == numerical.keys() == {"W1", "b1", "W2", "b2"}
    for name in analytic:
        assert analytic[name].shape == getattr(net, name).shape
        assert _rel_error(analytic[name], numerical[name]) < 1e-6, name


@pytest.mark.parametrize("loss", LOSSES)
def test_gradients_match_torch_autograd(loss):
    net, X, y = _random_problem(loss)
    expected = _torch_gradients(net, X, y)
    for name, grad in net.gradients(X, y).items():
        assert _rel_error(grad, expected[name]) < 1e-6, name


def test_numerical_gradients_leave_the_weights_unchanged():
    net, X, y = _random_problem("mse")
    before = net.get_params()
    numerical_gradients(net, X, y)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(net, name), value)


@pytest.mark.parametrize("loss", LOSSES)
def test_train_step_is_exactly_gradient_descent(loss):
    net, X, y = _random_problem(loss)
    before, grads, loss_before = net.get_params(), net.gradients(X, y), net.loss(X, y)
    assert net.train_step(X, y, lr=0.3) == loss_before
    for name in before:
        np.testing.assert_allclose(getattr(net, name), before[name] - 0.3 * grads[name], rtol=0, atol=1e-15)
    assert net.loss(X, y) < loss_before


def test_bce_is_finite_when_the_output_saturates():
    net = NeuralNetwork(loss="bce", seed=0)
    net.W2[:] = 1e3  # p rounds to exactly 0 or 1 in float64
    X, y = truth_table("xor")
    assert np.isfinite(net.loss(X, 1 - net.predict(X)))
    assert all(np.all(np.isfinite(g)) for g in net.gradients(X, y).values())


def test_same_seed_same_weights_and_losses():
    X, y = truth_table("xor")
    a, b = NeuralNetwork(seed=3), NeuralNetwork(seed=3)
    assert a.fit(X, y, epochs=200) == b.fit(X, y, epochs=200)
    for name, value in a.get_params().items():
        np.testing.assert_array_equal(value, b.get_params()[name])
    assert not np.array_equal(NeuralNetwork(seed=4).W1, NeuralNetwork(seed=3).W1)


def test_get_params_copies_and_set_params_validates():
    net, other = NeuralNetwork(seed=0), NeuralNetwork(seed=1)
    params = net.get_params()
    params["W1"][:] = 0.0
    assert not np.all(net.W1 == 0.0)
    other.set_params(net.get_params())
    X = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_array_equal(other.predict_proba(X), net.predict_proba(X))
    with pytest.raises(ValueError, match=r"W1: expected shape \(2, 4\), got \(3, 4\)"):
        other.set_params({**params, "W1": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="expected parameters W1, b1, W2, b2"):
        other.set_params({"W1": params["W1"]})


def test_wrong_shapes_name_both_sizes():
    net = NeuralNetwork(n_inputs=2)
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        net.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        net.fit(np.ones((4, 3)), np.ones(4), epochs=1)
    with pytest.raises(ValueError, match="expected 4 targets"):
        net.gradients(np.ones((4, 2)), np.ones(5))
    with pytest.raises(ValueError, match="unknown loss 'l1'; allowed: mse, bce"):
        NeuralNetwork(loss="l1")


def test_fit_prints_every_n_epochs(capsys):
    X, y = truth_table("xor")
    NeuralNetwork(seed=0).fit(X, y, epochs=10, lr=1.0, print_every=5)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["5", "10"]


def test_chain_rule_example_matches_the_lesson():
    step = chain_rule_example(x=2.0, w=3.0, b=1.0, target=5.0, lr=0.01)
    assert step.y == 7.0
    assert step.loss == 4.0
    assert step.dL_dw == 8.0
    assert step.dL_db == 4.0
    assert step.w_new == pytest.approx(2.92)
    assert step.b_new == pytest.approx(0.96)


@pytest.mark.parametrize(("x", "w", "b", "target"), [(2.0, 3.0, 1.0, 5.0), (-1.5, 0.4, 2.0, -3.0)])
def test_chain_rule_example_matches_autograd(x, w, b, target):
    w_t, b_t = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss = (w_t * x + b_t - target) ** 2
    loss.backward()
    step = chain_rule_example(x=x, w=w, b=b, target=target, lr=0.1)
    assert step.loss == pytest.approx(loss.item())
    assert step.dL_dw == pytest.approx(w_t.grad.item())
    assert step.dL_db == pytest.approx(b_t.grad.item())
    assert step.w_new == pytest.approx(w - 0.1 * w_t.grad.item())
