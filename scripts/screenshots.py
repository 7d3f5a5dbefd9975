"""Screenshots of a sweep's two dashboards as a person sees them: docs/images/dashboard_tensorboard.png and
docs/images/dashboard_optuna.png.

Runs a small Optuna search on XOR (two trials), starts the exact ``tensorboard`` and ``optuna-dashboard``
commands printed under its summary (each on a free port of 127.0.0.1 only), opens each page in headless
Chromium (Debian's ``chromium`` package), reads what the page shows after its scripts ran, saves a
screenshot and stops the server. tests/test_dashboards.py runs the same code and checks what was seen.

Usage (neuronlab[dev] installed, or PYTHONPATH=src; chromium on the PATH):
    python scripts/screenshots.py              # -> docs/images/
    python scripts/screenshots.py /tmp/shots
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from neuronlab.io.files import atomic_write

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1280,800",
    "--virtual-time-budget=15000",  # the page's scripts run (and fetch their data) before the DOM is read
    "--run-all-compositor-stages-before-draw",  # and draw frames: TensorBoard fills a card once it is seen
]
SEARCH = ("hydra.sweeper.n_trials=2", "trainer.max_epochs=30")  # seconds: a small XOR search
TAGS = ("train/loss", "val/acc")  # the curves the TensorBoard page is filtered to
SHOTS = {"tensorboard": "dashboard_tensorboard.png", "optuna": "dashboard_optuna.png"}


@dataclass
class Seen:
    """What the two pages showed."""

    sweep_dir: Path
    commands: list[str]
    tensorboard_tags: list[str] = field(default_factory=list)
    tensorboard_runs: list[str] = field(default_factory=list)
    optuna_texts: list[str] = field(default_factory=list)
    shots: dict[str, Path] = field(default_factory=dict)
    urls: list[str] = field(default_factory=list)


def small_search(work: Path) -> tuple[Path, list[str]]:
    """A finished two-trial Optuna search under ``work``: its sweep folder and the dashboard commands it
    printed (the lines under "open in a browser:")."""
    done = subprocess.run(
        [sys.executable, "-m", "neuronlab.train", "-m", "hparams_search=gates_optuna", *SEARCH],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the search failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    lines = done.stdout.splitlines()
    commands = [line.strip() for line in lines[lines.index("open in a browser:") + 1 :][:2]]
    (sweep_dir,) = (work / "outputs" / "xor" / "multiruns").iterdir()
    return sweep_dir, commands


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(
    command: str, home: Path, ready: str = "", shows: tuple[str, ...] = (), wait_s: float = 120
) -> Iterator[str]:
    """Run a printed dashboard command on a free loopback port until the block ends; yields its URL once
    the page ``ready`` answers with every text in ``shows`` (the server has read the data by then)."""
    port = free_port()
    argv = [*shlex.split(command), "--host", "127.0.0.1", "--port", str(port)]
    log = home / f"{argv[0]}.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(home)}
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} did not start:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url + ready, timeout=5) as page:
                    body = page.read().decode("utf-8", "replace")
                if all(text in body for text in shows):
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def browse(url: str, screenshot: Path, home: Path, shown: Callable[[str], bool], tries: int = 3) -> str:
    """The page's DOM once its scripts ran, and its screenshot, from one headless Chromium; looked at
    again (at most ``tries`` times) until ``shown(dom)``: headless Chromium now and then reads the page
    before TensorBoard has drawn its cards, where a person would just look a moment later."""
    for _ in range(tries):
        done = subprocess.run(
            [
                *CHROMIUM,
                f"--user-data-dir={home / 'chromium'}",
                f"--screenshot={screenshot}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "HOME": str(home)},
        )
        if done.returncode != 0 or not screenshot.is_file():
            raise RuntimeError(f"chromium could not open {url}:\n{done.stderr[-3000:]}")
        if shown(done.stdout):
            break
    return done.stdout


def card_tags(dom: str) -> list[str]:
    """The tags of the TensorBoard cards on a page."""
    return re.findall(r'<tb-truncated-path[^>]*class="tag"[^>]*title="([^"]*)"', dom)


def texts(dom: str) -> list[str]:
    """The visible text pieces of a page, in order."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return [html.unescape(t).strip() for t in re.split(r"<[^>]*>", body) if t.strip()]


def look(work: Path, shots: Path) -> Seen:
    """Run the search, open both dashboards, and return what they showed (screenshots in ``shots``)."""
    import optuna

    sweep_dir, commands = small_search(work)
    seen = Seen(sweep_dir, commands)
    tensorboard, optuna_dashboard = commands
    with serve(tensorboard, work, "data/plugin/scalars/tags", TAGS) as url:
        seen.urls.append(url)
        seen.shots["tensorboard"] = shots / SHOTS["tensorboard"]
        query = urllib.parse.quote("|".join(TAGS) + "$")  # only these cards: they fit the picture
        page = f"{url}?tagFilter={query}#timeseries"
        dom = browse(page, seen.shots["tensorboard"], work, lambda dom: set(TAGS) <= set(card_tags(dom)))
        seen.tensorboard_tags = card_tags(dom)
        seen.tensorboard_runs = sorted({t for t in texts(dom) if t.endswith("/tensorboard")})
    storage = optuna.storages.RDBStorage(shlex.split(optuna_dashboard)[1])
    study_id = storage.get_study_id_from_name("neuronlab")
    with serve(optuna_dashboard, work) as url:
        seen.urls.append(url)
        seen.shots["optuna"] = shots / SHOTS["optuna"]
        page = f"{url}dashboard/studies/{study_id}/trials"
        seen.optuna_texts = texts(browse(page, seen.shots["optuna"], work, lambda dom: " Trials<" in dom))
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "shots").mkdir()
        seen = look(work, work / "shots")
        missing = [t for t in TAGS if t not in seen.tensorboard_tags]
        if missing or "2 Trials" not in seen.optuna_texts:
            raise SystemExit(f"error: the dashboards did not show the search: {seen}")
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in seen.shots.values():
            atomic_write(args.out / shot.name, shot.read_bytes())
            print(f"saved {args.out / shot.name}")


if __name__ == "__main__":
    main()
