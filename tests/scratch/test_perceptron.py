import numpy as np
import pytest

from neuronlab.scratch import LINEARLY_SEPARABLE, Perceptron, truth_table


@pytest.mark.parametrize("gate", sorted(LINEARLY_SEPARABLE))
def test_learns_linearly_separable_gates(gate):
    X, y = truth_table(gate)
    model = Perceptron(seed=0)
    assert not np.array_equal(model.predict(X), y)  # random weights do not start out right
    result = model.fit(X, y, epochs=100, lr=0.1)
    assert result.converged
    assert result.epochs < 100
    assert result.errors[-1] == 0 and result.accuracy[-1] == 1.0
    assert len(result.errors) == len(result.accuracy) == result.epochs
    np.testing.assert_array_equal(model.predict(X), y)


def test_never_learns_xor_and_stops_at_the_epoch_limit():
    X, y = truth_table("xor")
    result = Perceptron(seed=0).fit(X, y, epochs=50, lr=0.1)
    assert not result.converged
    assert result.epochs == 50
    assert min(result.errors) > 0
    assert max(result.accuracy) < 1.0


def test_update_is_the_perceptron_rule():
    model = Perceptron(n_inputs=2, seed=0)
    model.weights[:] = [-1.0, -1.0]
    model.bias = -0.5
    x, lr = np.array([1.0, 2.0]), 0.25
    assert model.predict(x)[0] == 0.0  # target 1: error = +1
    model.fit(x[None, :], [1.0], epochs=1, lr=lr)
    np.testing.assert_allclose(model.weights, [-1.0 + lr * 1.0, -1.0 + lr * 2.0])
    assert model.bias == pytest.approx(-0.5 + lr)


def test_same_seed_same_run_and_other_seed_differs():
    X, y = truth_table("or")
    a, b, c = Perceptron(seed=7), Perceptron(seed=7), Perceptron(seed=8)
    ra, rb = a.fit(X, y), b.fit(X, y)
    assert ra == rb
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.bias == b.bias
    assert not np.array_equal(Perceptron(seed=7).weights, c.weights)


def test_wrong_shapes_name_both_sizes():
    model = Perceptron(n_inputs=2)
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        model.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="expected 2 features, got 3"):
        model.fit(np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="expected 4 targets"):
        model.fit(np.ones((4, 2)), np.ones(3))


def test_fit_prints_progress(capsys):
    X, y = truth_table("xor")
    Perceptron(seed=0).fit(X, y, epochs=6, lr=0.1, print_every=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch     3  errors")


def test_unknown_gate_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown gate 'xnor'; allowed: and, or, nand, nor, xor"):
        truth_table("xnor")
