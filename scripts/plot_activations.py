"""Save the lesson's 2x2 activation figure (sigmoid, ReLU, tanh, softmax) as a PNG.

Usage (with neuronlab installed, or PYTHONPATH=src):
    python scripts/plot_activations.py                 # -> activations.png
    python scripts/plot_activations.py figs/act.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neuronlab.scratch.plots import activation_figure


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path", nargs="?", default="activations.png", help="PNG to write (default: %(default)s)"
    )
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args(argv)
    path = Path(args.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    activation_figure().savefig(path, dpi=args.dpi)
    print(f"saved {path}")
    return path


if __name__ == "__main__":
    main()
