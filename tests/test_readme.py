"""README.md is the front door: short, every command in it works as written, every link leads somewhere.

Each ``neuronlab-*`` command in README's code blocks is run the way a reader would type it, with run and
sweep folders (``<run>``, ``<sweep>``) made by one tiny real sweep: the NumPy lesson, the sweep summary
and tab completion run for real; every training, eval, predict and export command is composed by its own
entry point with ``--cfg job`` (a sweep's ``-m`` values one at a time), so a misspelt option or key fails
here while nothing trains longer than the tiny sweep. The pages under docs/ get the same check, marked slow.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_entry

BIN = Path(sys.executable).parent
README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MAX_LINES = 250
COMMANDS = ("neuronlab-train", "neuronlab-eval", "neuronlab-predict", "neuronlab-export")
RUN_FOR_REAL = ("neuronlab-scratch", "neuronlab-summary")
FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<[^<>]*>")


def code_blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


def shell_lines(block: str) -> list[str]:
    """The block's command lines: continuations joined, comment-only lines (``#SBATCH``) left out."""
    joined = block.replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def neuronlab_commands(line: str) -> list[list[str]]:
    """Every neuronlab command on a shell line, as [name, *args]: also inside ``$(...)``, after ``|``,
    behind ``VAR=value``, ``srun`` or ``torchrun ... -m neuronlab.train``."""
    found = []
    tokens = shlex.split(line, comments=True)
    segment: list[str] = []
    for token in [*tokens, "|"]:
        if token.startswith("$(") and token.endswith(")"):
            found += neuronlab_commands(token[2:-1])
        elif token in ("|", "&&", ";"):
            for i, word in enumerate(segment):
                if re.fullmatch(r"neuronlab-\w+", word):
                    found.append([word, *segment[i + 1 :]])
                    break
                if word == "-m" and i + 1 < len(segment) and segment[i + 1].startswith("neuronlab."):
                    name = "neuronlab-" + segment[i + 1].removeprefix("neuronlab.")
                    found.append([name, *segment[i + 2 :]])
                    break
            segment = []
        else:
            segment.append(token)
    return found


def commands_of(path: Path) -> list[list[str]]:
    """The page's neuronlab commands, each once, in order."""
    found = [
        cmd
        for block in code_blocks(path, "bash")
        for line in shell_lines(block)
        for cmd in neuronlab_commands(line)
    ]
    return [list(cmd) for cmd in dict.fromkeys(map(tuple, found))]


def one_value_each(args: list[str]) -> list[list[str]]:
    """A sweep's arguments as plain runs that together use every swept value once: run i takes value i of
    each sweep (an interval its two ends), so ``model=a,b optimizer.lr=1,2`` composes as two runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep

    parser = OverridesParser.create()
    choices: list[list[str]] = []
    for arg in args:
        override = parser.parse_override(arg)
        if not override.is_sweep_override():
            choices.append([arg])
            continue
        sweep = override.value()
        values = (
            [str(sweep.start), str(sweep.end)]
            if isinstance(sweep, IntervalSweep)
            else list(override.sweep_string_iterator())
        )
        choices.append([f"{override.get_key_element()}={v}" for v in values])
    runs = max((len(c) for c in choices), default=1)
    return [[c[i % len(c)] for c in choices] for i in range(runs)]


def run(name: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The installed command, as a reader runs it (outputs under ``cwd/outputs``)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NEURONLAB_OUTPUT_ROOT": str(cwd / "outputs")}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [str(BIN / name), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """A tiny real sweep of one 2-epoch XOR job: its folder is ``<sweep>``, its job ``<run>`` (named
    ``job0``, a name that needs no quoting on a command line)."""
    cwd = tmp_path_factory.mktemp("readme")
    sweep = cwd / "outputs" / "xor" / "multiruns" / "tiny"
    args = ["-m", "seed=0", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}", "hydra.sweep.subdir=job0"]
    done = run("neuronlab-train", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (sweep / "job0" / "checkpoints" / "best.ckpt").is_file()
    return {"cwd": str(cwd), "<run>": str(sweep / "job0"), "<sweep>": str(sweep)}


def check_command(command: list[str], folders: dict[str, str], monkeypatch, capsys) -> None:
    """Run or compose one documented command; fail with the command and its error."""
    filled = []
    for arg in command:
        for placeholder in PLACEHOLDER.findall(arg):
            assert placeholder in folders, f"{shlex.join(command)}: write run folders <run>, sweeps <sweep>"
            arg = arg.replace(placeholder, folders[placeholder])
        filled.append(arg)
    name, args = filled[0], filled[1:]
    assert (BIN / name).exists(), f"{name}: no such command (pyproject's [project.scripts])"
    if name in RUN_FOR_REAL or "-sc" in args:
        done = run(name, *args, cwd=Path(folders["cwd"]))
        code, err = done.returncode, done.stderr
        variants = [args]
    elif name in COMMANDS:  # composed in this process by the command's own main(): no interpreter start
        plain = [a for a in args if a not in ("-m", "--multirun")]
        variants = one_value_each(plain) if len(plain) < len(args) else [plain]
        # a resume runs for real, on the tiny run: it trains a few XOR epochs at most (resume_argv puts the
        # run's overrides after the flags, so `resume=... --cfg job` cannot be composed)
        show = [] if any(a.startswith("resume=") for a in args) else ["--cfg", "job"]
        for variant in variants:
            monkeypatch.chdir(folders["cwd"])
            monkeypatch.setenv("NEURONLAB_OUTPUT_ROOT", str(Path(folders["cwd"]) / "outputs"))
            code, _, err = run_entry(monkeypatch, capsys, name.removeprefix("neuronlab-"), *show, *variant)
            assert code == 0, (
                f"{shlex.join(command)}\n -> {shlex.join([name, *show, *variant])}\n{err[-2000:]}"
            )
        return
    else:
        pytest.fail(f"{shlex.join(command)}: a command this test does not know how to check")
    assert code == 0, f"{shlex.join(command)}\n{err[-2000:]}"


def test_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines: move the details to docs/"
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b(?!_)", README.read_text()), "dated measurements go to docs/"


def test_ci_runs_the_readmes_install_and_test_commands():
    setup = README.read_text(encoding="utf-8").split("## Set up", 1)[1]
    block = FENCE.search(setup).group(2)
    ci = {line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()}
    for line in shell_lines(block):
        command = line.split("  #")[0].strip()
        assert command in ci, f"README's {command!r} is not what .ci/run runs"


def test_readme_commands_run_or_compose_as_written(folders, monkeypatch, capsys):
    commands = commands_of(README)
    names = {c[0] for c in commands}
    assert {"neuronlab-scratch", "neuronlab-train", "neuronlab-eval", "neuronlab-summary"} <= names
    for command in commands:
        check_command(command, folders, monkeypatch, capsys)


def test_a_misspelt_option_fails_the_check(folders, monkeypatch, capsys):
    with pytest.raises(AssertionError, match="max_epoch"):
        check_command(
            ["neuronlab-train", "-m", "experiment=mnist", "trainer.max_epoch=3", "seed=0,1"],
            folders,
            monkeypatch,
            capsys,
        )
    with pytest.raises(AssertionError, match="Could not find 'data/foo'"):
        check_command(["neuronlab-eval", "ckpt_path=<run>", "data=foo"], folders, monkeypatch, capsys)


def test_readme_python_names_exist():
    import neuronlab

    for block in code_blocks(README, "python"):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "neuronlab"
            ):
                assert hasattr(neuronlab, node.attr), (
                    f"README uses neuronlab.{node.attr}, which does not exist"
                )


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(m) for m in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_script_exists(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):  # https://, mailto:
            continue
        file, _, anchor = target.partition("#")
        where = (page.parent / file).resolve() if file else page
        assert where.exists(), f"{page.name}: the link {target} leads nowhere"
        if anchor and where.suffix == ".md":
            assert anchor in anchors(where), f"{page.name}: {where.name} has no heading #{anchor}"
    for script in re.findall(r"(?:^|[\s`(])((?:\./)?scripts/[\w./-]+\.(?:py|sh))", text):
        assert (REPO / script).is_file(), f"{page.name}: {script} does not exist"


@pytest.mark.slow  # every command of every page: about a minute and a half
@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_docs_commands_run_or_compose_as_written(page, folders, monkeypatch, capsys):
    for command in commands_of(page):
        check_command(command, folders, monkeypatch, capsys)
