"""``neuronlab-scratch model=numpy_net gate=xor``: train the NumPy perceptron or two-layer network on a
logic gate (``conf/scratch.yaml``). Prints the truth table with predictions and progress lines, and saves
``loss_curve.png`` in the run folder (``outputs/scratch/runs/<timestamp>/``)."""

from __future__ import annotations

from pathlib import Path

import hydra
import numpy as np
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from neuronlab.config import CONF_DIR, is_int, register_resolvers
from neuronlab.errors import ConfigError, run_command, run_hydra_command
from neuronlab.scratch.gates import GATES, LINEARLY_SEPARABLE, truth_table
from neuronlab.scratch.network import LOSSES, NeuralNetwork
from neuronlab.scratch.perceptron import Perceptron

MODELS = ("perceptron", "numpy_net")


def _bad(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"invalid {key}={value!r}; allowed: {allowed}")


def validate(cfg: DictConfig) -> None:
    """Check every key before training; the first bad one exits with a message naming key, value, rule."""
    if cfg.model not in MODELS:  # first: the per-model defaults of epochs/lr depend on it
        raise _bad("model", cfg.model, ", ".join(MODELS))
    if str(cfg.gate).lower() not in GATES:
        raise _bad("gate", cfg.gate, ", ".join(GATES))
    if not is_int(cfg.epochs) or cfg.epochs <= 0:
        raise _bad("epochs", cfg.epochs, "an integer > 0")
    if not (is_int(cfg.lr) or isinstance(cfg.lr, float)) or not cfg.lr > 0:
        raise _bad("lr", cfg.lr, "a number > 0")
    if not is_int(cfg.seed) or cfg.seed < 0:
        raise _bad("seed", cfg.seed, "an integer >= 0")
    if cfg.print_every is not None and (not is_int(cfg.print_every) or cfg.print_every <= 0):
        raise _bad("print_every", cfg.print_every, "an integer > 0, or null for no progress lines")
    if not is_int(cfg.hidden) or cfg.hidden <= 0:
        raise _bad("hidden", cfg.hidden, "an integer > 0")
    if cfg.loss not in LOSSES:
        raise _bad("loss", cfg.loss, ", ".join(LOSSES))


def print_truth_table(
    X: np.ndarray, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None = None
) -> None:
    """The lesson's table: inputs, target and prediction per row (and P(y=1) for the network)."""
    header = " x1  x2 | target | prediction" + (" | probability" if proba is not None else "")
    print(header + "\n" + "-" * len(header))
    for i, (x, target, p) in enumerate(zip(X, y, pred, strict=True)):
        row = f"{x[0]:3.0f} {x[1]:3.0f} | {target:6.0f} | {p:10.0f}"
        print(row + (f" | {proba[i]:11.4f}" if proba is not None else ""))
    print(f"accuracy: {int(np.sum(pred == y))}/{len(y)} ({np.mean(pred == y):.0%})")


def run(cfg: DictConfig) -> Path:
    """Check the config, train the chosen model on the chosen gate, report, and save the curve; returns
    the PNG's path."""
    validate(cfg)
    from neuronlab.scratch.plots import loss_curve_figure  # matplotlib only once the config is valid

    gate = str(cfg.gate).lower()
    X, y = truth_table(gate)
    settings = f"model={cfg.model} gate={gate} epochs={cfg.epochs} lr={cfg.lr} seed={cfg.seed}"
    print(settings + (f" hidden={cfg.hidden} loss={cfg.loss}" if cfg.model == "numpy_net" else ""))

    if cfg.model == "perceptron":
        model = Perceptron(n_inputs=X.shape[1], seed=cfg.seed)
        result = model.fit(X, y, epochs=cfg.epochs, lr=cfg.lr, print_every=cfg.print_every)
        status = f"converged after {result.epochs} epochs" if result.converged else "did not converge"
        print(f"\nPerceptron on {gate.upper()}: {status}")
        print_truth_table(X, y, model.predict(X))
        if not result.converged:
            if gate in LINEARLY_SEPARABLE:
                print(f"\n{gate.upper()} is linearly separable: try more epochs (epochs={cfg.epochs} now).")
            else:
                print(
                    "\nXOR is not linearly separable: no straight line puts (0,1) and (1,0) on one side"
                    "\nand (0,0) and (1,1) on the other, so a perceptron never gets all four right"
                    f"\n(stopped after {result.epochs} epochs, best accuracy {max(result.accuracy):.0%})."
                    "\nA hidden layer solves it:  neuronlab-scratch model=numpy_net gate=xor"
                )
        fig = loss_curve_figure(result.errors, "mistakes per epoch", f"Perceptron on {gate.upper()}")
    else:
        model = NeuralNetwork(n_inputs=X.shape[1], n_hidden=cfg.hidden, loss=cfg.loss, seed=cfg.seed)
        history = model.fit(X, y, epochs=cfg.epochs, lr=cfg.lr, print_every=cfg.print_every)
        name = f"NeuralNetwork 2-{cfg.hidden}-1 on {gate.upper()}"
        print(f"\n{name} ({cfg.loss} loss): final loss {history[-1]:.6f}")
        print_truth_table(X, y, model.predict(X), model.predict_proba(X))
        fig = loss_curve_figure(history, f"loss ({cfg.loss})", name)

    out_dir = Path(cfg.out_dir)
    png = out_dir / "loss_curve.png"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(png, dpi=100)
    except OSError as err:
        raise ConfigError(
            f"out_dir={out_dir}: cannot write {png.name} ({err.strerror}): choose another out_dir=..."
        ) from None
    print(f"\nloss curve: {png}")
    return png


# conf/scratch.yaml is served through the ConfigStore rather than config_path=CONF_DIR: in conf/ a
# `model=...` override would select from the torch models' config group conf/model/ and fail.
ConfigStore.instance().store(name="scratch", node=OmegaConf.load(Path(CONF_DIR) / "scratch.yaml"))
register_resolvers()  # ${unique_stamp:}: the run folder's name


@hydra.main(version_base="1.3", config_path=None, config_name="scratch")
def _main(cfg: DictConfig) -> None:
    run_command(lambda: run(cfg))


def main() -> None:
    """``neuronlab-scratch``: a bad value, unknown option or key is one ``error:`` line and exit 2."""
    run_hydra_command(_main)


if __name__ == "__main__":
    main()
