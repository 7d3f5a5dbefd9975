import pytest
import torch

from neuronlab.io.checkpoint import allowed_class
from neuronlab.models import ACTIVATIONS, NETS, MNISTClassifier, ModernNetwork, SimpleNN


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_simple_nn_is_the_lessons_2_4_1():
    net = SimpleNN()
    assert net(torch.zeros(5, 2)).shape == (5, 1)
    assert n_params(net) == 2 * 4 + 4 + 4 * 1 + 1
    probs = net.predict_proba(torch.tensor([[0.0, 1.0]]))
    assert 0 < probs.item() < 1


def test_mnist_classifier_has_235146_parameters_and_takes_images():
    net = MNISTClassifier()
    assert n_params(net) == 235_146
    assert isinstance(net.layers[0], torch.nn.Flatten)
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    probs = net.eval().predict_proba(torch.rand(4, 1, 28, 28))
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))


def test_modern_network_784_256_128_10_with_dropout():
    net = ModernNetwork()
    assert n_params(net) == 235_146
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 128), (128, 10)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in net.modules()) == 2
    assert net(torch.zeros(2, 784)).shape == (2, 10)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_swaps(name):
    net = ModernNetwork(activation=name, hidden_sizes=(8,))
    assert isinstance(net.layers[1], ACTIVATIONS[name])


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="model.activation='swish'.*relu"):
        SimpleNN(activation="swish")
    with pytest.raises(ValueError, match="model.dropout=1.0"):
        ModernNetwork(dropout=1.0)
    with pytest.raises(ValueError, match="model.hidden_sizes=0"):
        ModernNetwork(hidden_sizes=(256, 0))


def test_wrong_input_size_names_both_sizes():
    with pytest.raises(ValueError, match="expects 2 input features, got 3"):
        SimpleNN()(torch.zeros(1, 3))


@pytest.mark.parametrize("net", [SimpleNN(hidden_size=6), ModernNetwork(dropout=0.1), MNISTClassifier()])
def test_config_rebuilds_the_same_architecture(net):
    cls, args = allowed_class(net.config(), NETS, "net")
    rebuilt = cls(**args)
    assert type(rebuilt) is type(net)
    rebuilt.load_state_dict(net.state_dict())
    x = torch.rand(2, net.input_size)
    torch.testing.assert_close(rebuilt.eval()(x), net.eval()(x))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"_target_": "os.system", "command": "true"}, "net: 'os.system' is not allowed"),
        (
            {"_target_": "neuronlab.models.mlp.SimpleNNX"},
            "net: 'neuronlab.models.mlp.SimpleNNX' is not allowed",
        ),
        ({"_target_": "neuronlab.models.mlp.SimpleNN", "bias": False}, "SimpleNN has no argument 'bias'"),
        ({"_target_": "neuronlab.models.mlp.MLP", "hidden_sizes": [{"a": 1}]}, "is not a plain value"),
        ("neuronlab.models.mlp.MLP", "expected a mapping"),
    ],
)
def test_a_stored_net_description_names_only_allowed_classes_and_their_arguments(config, message):
    with pytest.raises(ValueError, match=message):
        allowed_class(config, NETS, "net")
