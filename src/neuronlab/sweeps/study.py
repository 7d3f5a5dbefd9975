"""An Optuna search driven from Hydra with Optuna's ask-and-tell API (docs/sweeps.md).

The study lives in ``<sweep dir>/optuna.db`` or ``hydra.sweeper.storage`` (any SQLAlchemy URL), shared by
every sweep process; ``n_trials`` is its total budget, asked for under a lock held in the storage. A trial
whose sweep process died is closed as FAIL and re-queued. Each job gets ``+optuna_trial=<number>`` (its
folder, its pruner). Everything read back from the study is checked before use: anyone may have written it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import socket
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuronlab.config import is_int
from neuronlab.errors import NeuronlabError, first_line
from neuronlab.io.files import open_lock_file
from neuronlab.run.paths import override_key
from neuronlab.show import shown

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
DB_FILE = "optuna.db"
TRIAL_KEY = "optuna_trial"  # the job override naming a job's trial: +optuna_trial=<number>
SEARCH_ATTR = "neuronlab_search"  # the study's search space, to refuse resuming it with another one
OWNER_ATTR = "neuronlab_sweeper"  # [host, pid] of the sweep process that asked for a trial
HEARTBEAT_S = 30
GRACE_S = 120
# keys that may differ between the machines of one study without changing what is searched
MACHINE_KEYS = ("paths.", "data.data_dir", "data.download", "hydra.launcher.")
SERVER_LOCKS = {  # (lock, unlock) of a database server's advisory lock
    "postgresql": ("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)"),
    "mysql": ("SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)"),
    "mariadb": ("SELECT GET_LOCK(:k, -1)", "SELECT RELEASE_LOCK(:k)"),
}


def check_settings(s: Mapping[str, Any]) -> None:
    """Every ``hydra.sweeper.*`` value, before anything is created."""

    def bad(key: str, allowed: str) -> NeuronlabError:
        return NeuronlabError(f"hydra.sweeper.{key}={s.get(key)!r} is not allowed: expected {allowed}")

    for key, allowed in (("direction", DIRECTIONS), ("sampler", SAMPLERS), ("pruner", PRUNERS)):
        if s.get(key) not in allowed:
            raise bad(key, ", ".join(allowed))
    for key in ("n_trials", "n_jobs"):
        if not is_int(s.get(key)) or s[key] <= 0:
            raise bad(key, "an integer > 0")
    for key in ("n_startup_trials", "pruner_startup_trials", "pruner_warmup_epochs"):
        if not is_int(s.get(key)) or s[key] < 0:
            raise bad(key, "an integer >= 0")
    if s.get("seed") is not None and (not is_int(s["seed"]) or s["seed"] < 0):
        raise bad("seed", "an integer >= 0 or null")
    rate = s.get("max_failure_rate")
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise bad("max_failure_rate", "a number in [0, 1]")
    for key in ("storage", "study_name"):
        if s.get(key) is not None and (not isinstance(s[key], str) or not s[key].strip()):
            raise bad(key, "a non-empty string or null")
    if s.get("storage") is not None and s.get("study_name") is None:
        raise NeuronlabError(
            "hydra.sweeper.storage is set but not hydra.sweeper.study_name: a shared database holds many "
            "studies, name this one (e.g. hydra.sweeper.study_name=my_search)"
        )


def storage_url(settings: Mapping[str, Any], sweep_dir: str | Path) -> str:
    """The study's database: ``hydra.sweeper.storage``, or SQLite ``optuna.db`` at the sweep's root."""
    return settings.get("storage") or f"sqlite:///{Path(sweep_dir).resolve() / DB_FILE}"


def study_name(settings: Mapping[str, Any]) -> str:
    return settings.get("study_name") or "neuronlab"


def shown_url(url: str) -> str:
    """A storage URL for messages and logs: its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def open_storage(url: str, heartbeat: bool = True) -> Any:
    """Optuna's RDB storage on ``url`` (created if new), or one clear error saying why it cannot be."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    # SQLite: wait up to two minutes for other processes' writes instead of failing
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    beats = {
        "heartbeat_interval": HEARTBEAT_S,
        "grace_period": GRACE_S,
        "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(),
    }
    for attempt in (1, 2, 3):
        try:
            with sqlite_lock(url), warnings.catch_warnings():  # one process at a time makes the tables
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs, **(beats if heartbeat else {}))
        except Exception as err:
            raced = any(w in str(err).lower() for w in ("already exists", "duplicate", "unique constraint"))
            if not raced or attempt == 3:
                cause = getattr(err, "orig", None) or err  # the database driver's words, without SQLAlchemy's
                raise NeuronlabError(
                    f"hydra.sweeper.storage={shown_url(url)} cannot be opened ({first_line(cause)}); "
                    "pass a SQLAlchemy URL such as sqlite:////abs/path/optuna.db or postgresql://user:password@host/database"
                ) from None
            time.sleep(1.0)  # another process made the tables at the same moment: they are there now


@dataclass
class Search:
    """What a study searches: one Optuna distribution per swept key, and the overrides every trial gets."""

    distributions: dict[str, Any]
    fixed: list[str]

    def fingerprint(self, direction: str) -> str:
        """The search as one canonical string, stored with the study: a resume must search the same."""
        from optuna.distributions import distribution_to_json

        fixed = sorted(o for o in self.fixed if not override_key(o).startswith(MACHINE_KEYS))
        params = {k: json.loads(distribution_to_json(d)) for k, d in sorted(self.distributions.items())}
        return json.dumps({"direction": direction, "params": params, "fixed": fixed}, sort_keys=True)


def _distribution(override: Any) -> Any:
    """Hydra's sweep syntax as an Optuna distribution (as hydra-optuna-sweeper read it)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key = override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.encode))
        if not all(isinstance(c, str | int | float | bool) for c in choices):
            raise NeuronlabError(f'{key}: choice() takes plain values; quote lists: choice("[1,2]","[3]")')
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise NeuronlabError(f"{key}=range(...) is empty")
        if all(isinstance(v, int) for v in values):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if value.start >= value.end or (log_scale and value.start <= 0):
            raise NeuronlabError(f"{key}=interval({value.start}, {value.end}) is empty or, with log, not > 0")
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise NeuronlabError(f"{override.input_line}: use choice(...), interval(...) or range(...) in a search")


def parse_search(params: Mapping[str, Any], arguments: list[str]) -> Search:
    """``hydra.sweeper.params`` and the command line's overrides (these win) as a :class:`Search`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = {str(k): f"{k}={v}" for k, v in (params or {}).items()}
    parser = OverridesParser.create()
    for override in parser.parse_overrides(arguments):
        lines[override.get_key_element()] = override.input_line
    distributions: dict[str, Any] = {}
    fixed: list[str] = []
    for override in parser.parse_overrides(list(lines.values())):
        if override.get_key_element().lstrip("+~") == TRIAL_KEY:
            raise NeuronlabError(f"{TRIAL_KEY} is set by the Optuna sweeper itself; leave it out")
        if override.is_sweep_override():
            distributions[override.get_key_element()] = _distribution(override)
        else:
            fixed.append(override.input_line)
    if not distributions:
        raise NeuronlabError(
            "the search space is empty: give hydra.sweeper.params (or the command line) at least one "
            "choice(...), interval(...) or range(...), e.g. 'optimizer.lr=tag(log,interval(1e-4,1e-1))'"
        )
    return Search(distributions, fixed)


def grid_values(search: Search) -> dict[str, list[Any]]:
    """The grid sampler's values: every choice, every value of a range; an interval has no grid."""
    from optuna.distributions import CategoricalDistribution

    grid: dict[str, list[Any]] = {}
    for key, d in search.distributions.items():
        if isinstance(d, CategoricalDistribution):
            grid[key] = list(d.choices)
        elif d.step is not None:
            n = round((d.high - d.low) / d.step) + 1
            grid[key] = [d.low + i * d.step for i in range(n)]
        else:
            raise NeuronlabError(
                f"hydra.sweeper.sampler=grid needs choice() or range() values; {key} is an interval()"
            )
    return grid


def make_sampler(settings: Mapping[str, Any], search: Search, number: int) -> Any:
    """The sampler for trial ``number``, seeded with (seed, number): a resumed search draws as an
    uninterrupted one would, and processes with other seeds draw other trials."""
    import numpy as np
    import optuna

    seed = settings.get("seed")
    if seed is not None:
        seed = int(np.random.SeedSequence((seed, number)).generate_state(1)[0])
    if settings["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if settings["sampler"] == "grid":
        return optuna.samplers.GridSampler(grid_values(search), seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings["n_startup_trials"])


def open_study(settings: Mapping[str, Any], search: Search, url: str, storage: Any) -> Any:
    """The study, created if new; an existing one must search the same space in the same direction."""
    import optuna

    name = study_name(settings)
    fingerprint = search.fingerprint(settings["direction"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name, storage=storage, direction=settings["direction"], load_if_exists=True
    )
    where = f"study {name!r} in {shown_url(url)}"
    try:  # Optuna rebuilds each stored value from its row: a crafted row fails here, not mid-search
        trials = study.get_trials(deepcopy=False)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise NeuronlabError(
            f"{where} holds a trial that cannot be read ({shown(first_line(err))}): the database is damaged "
            "or was not written by neuronlab; start a new study with a new hydra.sweep.dir"
        ) from None
    stored = study.user_attrs.get(SEARCH_ATTR)
    if stored is None and not trials:
        study.set_user_attr(SEARCH_ATTR, fingerprint)
    elif stored != fingerprint:
        raise NeuronlabError(
            f"{where} was made with other parameters "
            f"({_differences(stored, fingerprint)}): resume it with the same search, or start another "
            f"with a new hydra.sweep.dir (or hydra.sweeper.study_name)"
        )
    for trial in trials:  # the values tried, and those enqueued for the next trials (WAITING)
        check_values(
            trial.params or trial.system_attrs.get("fixed_params") or {}, search, where, trial.number
        )
    return study


def check_values(values: Any, search: Search, where: str, number: int) -> None:
    """Refuse a trial's values unless each is one the search allows: a stored value (a crafted database,
    an enqueued trial) never chooses an override outside the search space."""
    if not isinstance(values, Mapping):
        raise NeuronlabError(f"{where}: trial {number} holds no parameters but {shown(values)}")
    for key, value in values.items():
        distribution = search.distributions.get(key)
        if distribution is None or not _allowed(distribution, value):
            from optuna.distributions import distribution_to_json

            allowed = _describe(json.loads(distribution_to_json(distribution))) if distribution else "none"
            raise NeuronlabError(
                f"{where}: trial {number} holds {shown(key)}={shown(value)}, outside the search "
                f"(allowed: {allowed}); start a new study with a new hydra.sweep.dir"
            )


def _allowed(distribution: Any, value: Any) -> bool:
    """Whether ``value`` is one of the values ``distribution`` (a choice, range or interval) may give."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    if isinstance(distribution, IntDistribution) and not float(value).is_integer():
        return False
    steps = (value - distribution.low) / distribution.step if distribution.step else 0.0
    return distribution.low <= value <= distribution.high and math.isclose(steps, round(steps), abs_tol=1e-6)


def _differences(stored: Any, wanted: str) -> str:
    """What differs between two fingerprints, for the message; ``stored`` comes from the database."""
    try:
        old = json.loads(stored)
    except (TypeError, ValueError):
        old = None
    if not isinstance(old, dict):
        return "it was not made by neuronlab's sweeper"
    new = json.loads(wanted)
    parts = [
        f"{k} {shown(old.get(k))} vs {shown(new[k])}" for k in ("direction", "fixed") if old.get(k) != new[k]
    ]
    old_params = old["params"] if isinstance(old.get("params"), dict) else {}
    for key in sorted(set(old_params) | set(new["params"])):
        if old_params.get(key) != new["params"].get(key):
            was, now = _describe(old_params.get(key)), _describe(new["params"].get(key))
            parts.append(f"{shown(key)}: {shown(was)} vs {now}")
    return "; ".join(parts) or "unknown difference"


def _describe(d: Any) -> str:
    if not isinstance(d, dict) or not isinstance(d.get("attributes"), dict):
        return "(not searched)"
    a = d["attributes"]
    if "choices" in a:
        return f"choice{tuple(a['choices'])}"
    return f"{'log ' if a.get('log') else ''}interval({a.get('low')}, {a.get('high')})"


def budget_used(trials: list[Any]) -> int:
    """Trials that count against ``n_trials``: all but those a kill ended (their re-queued copy counts)."""
    from optuna.trial import TrialState

    histories = [t.system_attrs.get("retry_history") for t in trials]
    retried = {n for h in histories if isinstance(h, list) and all(map(is_int, h)) for n in h}
    return sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        pass
    return True


def close_dead_trials(study: Any) -> None:
    """RUNNING trials whose sweep process is gone -> FAIL, parameters re-queued: on this machine at once,
    elsewhere once their heartbeat is older than the grace period."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    fail_stale_trials(study)
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(OWNER_ATTR)
        mine = isinstance(owner, list) and len(owner) == 2 and owner[0] == host
        if mine and is_int(owner[1]) and owner[1] > 0 and not _alive(owner[1]):
            _fail_and_requeue(study, trial.number)
    still = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if before - still:
        log.warning(f"trials {sorted(before - still)} were left running by a stopped sweep: FAIL, re-queued")


def _fail_and_requeue(study: Any, number: int) -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    frozen = study.get_trials(deepcopy=True)[number]
    RetryHeartbeatStaleTrialCallback()(study, frozen)


@contextmanager
def sqlite_lock(url: str) -> Iterator[None]:
    """For a SQLite file: an exclusive lock on a file beside it (``.optuna.db.lock``); else nothing."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL: opening it says so
        parsed = None
    database = parsed.database if parsed is not None and parsed.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:" or not Path(database).parent.is_dir():
        yield
        return
    path = Path(database)
    with open_lock_file(path.with_name(f".{path.name}.lock")) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def budget_lock(url: str, name: str, storage: Any) -> Iterator[None]:
    """One sweep process at a time counts the study's trials and asks for new ones.

    SQLite: a lock file beside the database; PostgreSQL and MySQL: the server's own advisory lock; another
    database: none (processes started together may overshoot the budget by a batch).
    """
    import zlib

    from sqlalchemy import text

    backend = storage.engine.url.get_backend_name()
    if backend not in SERVER_LOCKS:
        with sqlite_lock(url):
            yield
        return
    lock, unlock = SERVER_LOCKS[backend]
    key = zlib.crc32(f"neuronlab-optuna:{name}".encode())
    with storage.engine.connect() as connection:
        connection.execute(text(lock), {"k": key})
        try:
            yield
        finally:
            connection.execute(text(unlock), {"k": key})
            connection.commit()


@contextmanager
def heartbeats(storage: Any) -> Iterator[set[int]]:
    """Tells the storage every ``HEARTBEAT_S`` seconds that the trials in the yielded set still run."""
    running: set[int] = set()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            for trial_id in list(running):
                with suppress(Exception):
                    storage.record_heartbeat(trial_id)

    threading.Thread(target=beat, name="optuna-heartbeat", daemon=True).start()
    try:
        yield running
    finally:
        stop.set()


def _job_value(ret: Any) -> tuple[float | None, str]:
    """A job's return as Optuna's value, or why it failed."""
    try:
        value = ret.return_value
    except BaseException as err:  # the job's own exception, raised again by Hydra's JobReturn
        return None, first_line(err)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"the job returned {value!r}, not a number: is optimized_metric set?"
    if not math.isfinite(value):
        return None, f"the job returned {value}"
    return float(value), ""


def run_search(settings: Mapping[str, Any], config: Any, launcher: Any, arguments: list[str]) -> None:
    """The whole search: check, open or resume the study, run trials up to the budget, report."""
    import optuna
    from optuna.trial import TrialState

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats, retries
    check_settings(settings)
    search = parse_search(settings.get("params") or {}, arguments)
    budget = settings["n_trials"]
    if settings["sampler"] == "grid":
        budget = min(budget, math.prod(len(v) for v in grid_values(search).values()))
    sweep_dir = Path(str(config.hydra.sweep.dir))
    url = storage_url(settings, sweep_dir)
    created = not sweep_dir.exists()
    if settings.get("storage") is None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    try:
        storage = open_storage(url)
        study = open_study(settings, search, url, storage)
    except BaseException:
        if created and settings.get("storage") is None:  # leave nothing behind a refused start
            for made in (DB_FILE, f".{DB_FILE}.lock"):
                (sweep_dir / made).unlink(missing_ok=True)
            with suppress(OSError):
                sweep_dir.rmdir()
        raise
    name = study.study_name
    log.info(
        f"Optuna study {name!r} in {shown_url(url)}: {len(study.trials)} trials so far, budget {budget}, "
        f"sampler {settings['sampler']}, pruner {settings['pruner']}, direction {settings['direction']}"
    )
    host, pid = socket.gethostname(), os.getpid()
    # the launcher's first job index: on from the sweep folder's last job (job folders are <n>_...)
    prefixes = [p.name.split("_", 1)[0] for p in sweep_dir.glob("*_*")]
    job_idx = max((int(n) for n in prefixes if n.isdigit()), default=-1) + 1
    ran = 0
    with heartbeats(storage) as running:
        while True:
            asked = []
            with budget_lock(url, name, storage):
                close_dead_trials(study)
                trials = study.get_trials(deepcopy=False)
                waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
                n_ask = min(settings["n_jobs"], waiting + max(0, budget - budget_used(trials)))
                for _ in range(n_ask):
                    study.sampler = make_sampler(settings, search, len(study.get_trials(deepcopy=False)))
                    with warnings.catch_warnings():  # "heartbeats are meant for Study.optimize": we beat
                        warnings.simplefilter("ignore", UserWarning)
                        trial = study.ask(search.distributions)
                    try:  # an enqueued trial's values, enqueued since the study was opened
                        check_values(trial.params, search, f"study {name!r}", trial.number)
                    except NeuronlabError:
                        _tell(study, trial, None, TrialState.FAIL)
                        raise
                    trial.set_user_attr(OWNER_ATTR, [host, pid])
                    storage.record_heartbeat(trial._trial_id)  # a kill before the next beat is seen too
                    running.add(trial._trial_id)
                    asked.append(trial)
            if not asked:
                break
            overrides = [
                [*search.fixed, *(f"{k}={v}" for k, v in t.params.items()), f"+{TRIAL_KEY}={t.number}"]
                for t in asked
            ]
            try:
                returns = launcher.launch(overrides, initial_job_idx=job_idx)
            except BaseException:  # Ctrl-C, SIGTERM, a launcher error: FAIL, re-queued for the next run
                for trial in asked:
                    with suppress(Exception):
                        _fail_and_requeue(study, trial.number)
                raise
            job_idx += len(returns)
            ran += len(returns)
            failures = []
            for trial, ret in zip(asked, returns, strict=True):
                running.discard(trial._trial_id)
                value, why = _job_value(ret)
                if value is None:
                    failures.append(ret)
                    log.warning(f"trial {trial.number} failed: {why}")
                _tell(study, trial, value, TrialState.FAIL if value is None else TrialState.COMPLETE)
            if failures and len(failures) / len(returns) > settings["max_failure_rate"]:
                rate = settings["max_failure_rate"]
                log.error(f"{len(failures)} of {len(returns)} trials failed (max_failure_rate={rate})")
                _ = failures[0].return_value  # raises the job's own error
    write_results(study, sweep_dir, ran)


def _tell(study: Any, trial: Any, value: float | None, state: Any) -> None:
    try:
        study.tell(trial, value, state=state, skip_if_finished=True)  # a pruned trial told it already
    except RuntimeError as err:  # the grid sampler asks the study to stop: the loop ends by itself
        if "Study.stop" not in str(err):
            raise


def write_results(study: Any, sweep_dir: Path, ran: int) -> None:
    """``optimization_results.yaml``: the best trial, the study's counts and, once four trials completed,
    Optuna's parameter importances (its default evaluator)."""
    import optuna
    import yaml

    from neuronlab.io.files import atomic_write

    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "trials": dict(counts)}
    if counts["complete"]:
        best = study.best_trial
        results.update(best_trial=best.number, best_params=best.params, best_value=best.value)
        log.info(f"Best trial {best.number}: value {best.value}, parameters {best.params}")
    results["importance"] = {}
    if counts["complete"] >= 4:
        try:
            importance = optuna.importance.get_param_importances(study)
            results["importance"] = {k: float(v) for k, v in importance.items()}
        except Exception as err:  # a single-valued search space, ...
            log.info(f"no parameter importances: {err}")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(sweep_dir / "optimization_results.yaml", yaml.safe_dump(results, sort_keys=False))
    log.info(f"This run ran {ran} trials; the study has {dict(counts)}")
