"""Break the code on purpose, one promise at a time, and check that the tests guarding it fail.

Each entry below is a change that breaks one of README's promises (issue 18's table, and more). For
each, the source tree is copied to a temporary folder, the change applied there (never to the working
tree), and only the guarding tests are run against the copy (``PYTHONPATH`` puts it first, in this
process and in the ones the tests start). A change the tests do not catch is reported as SURVIVED and the
script exits 1.

    python scripts/mutation_table.py               # every entry
    python scripts/mutation_table.py rng purge     # some entries, by name
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    promise: str
    file: str  # under src/neuronlab/
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        "ddp-shard",
        "every DDP rank trains and evaluates its own shard of each split",
        "data/base.py",
        "            rank, world = self.trainer.global_rank, self.trainer.world_size\n",
        "            rank, world = 0, 1\n",
        (
            "tests/data/test_loader.py::test_the_datamodule_hands_each_rank_of_its_trainer_its_own_shard",
            "tests/test_ddp.py::test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split",
        ),
    ),
    Mutation(
        "rng",
        "a resumed run restores the torch RNG state (dropout masks)",
        "tasks/classifier.py",
        '            torch.set_rng_state(state["torch"])\n',
        "            pass\n",
        ("tests/test_robustness.py::test_resume_continues_bit_for_bit_and_the_curves_exactly",),
    ),
    Mutation(
        "purge",
        "a resumed run's TensorBoard curves hold no step twice",
        "run/loggers.py",
        '        self._kwargs["purge_step"] = step\n',
        "        pass\n",
        ("tests/test_robustness.py::test_resume_continues_bit_for_bit_and_the_curves_exactly",),
    ),
    Mutation(
        "tie-break",
        "equal metrics in a sweep summary: the lower val/loss ranks first",
        "summary/table.py",
        "_score(job.metrics.get(TIE_BREAK, math.nan), False)",
        "_score(job.metrics.get(TIE_BREAK, math.nan), True)",
        ("tests/test_summary_ranking.py",),
    ),
    Mutation(
        "ddp-sync",
        "epoch metrics are summed over DDP processes",
        "tasks/classifier.py",
        '        super().__init__()\n        self.add_state("loss_sum"',
        '        super().__init__(sync_on_compute=False)\n        self.add_state("loss_sum"',
        ("tests/test_ddp.py::test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split",),
    ),
    Mutation(
        "ddp-count-not-summed",
        "the sample count of an epoch metric is summed over DDP processes",
        "tasks/classifier.py",
        'self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")',
        'self.add_state("count", torch.tensor(0), dist_reduce_fx=None)',
        ("tests/test_ddp.py::test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split",),
    ),
    Mutation(
        "resume-from-scratch",
        "resume continues from last.ckpt instead of starting again in the same folder",
        "train.py",
        "trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)",
        "trainer.fit(task, datamodule=datamodule, ckpt_path=None, weights_only=True)",
        (
            "tests/test_robustness.py::test_resume_continues_bit_for_bit_and_the_curves_exactly",
            "tests/test_robustness.py::test_ckpt_path_to_a_run_folder_resumes_it_and_later_overrides_win",
        ),
    ),
    Mutation(
        "not-atomic",
        "a checkpoint is written to a temporary file, then renamed over its name",
        "io/files.py",
        "    fd, tmp = _create_temporary(path)\n",
        "    fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), path\n",
        ("tests/test_atomic_write.py",),
    ),
    Mutation(
        "not-atomic-real-run",
        "a checkpoint is written to a temporary file, then renamed (a real run whose disk fills up)",
        "io/files.py",
        "    fd, tmp = _create_temporary(path)\n",
        "    fd, tmp = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), path\n",
        ("tests/test_atomic_write.py::test_a_run_whose_disk_fills_up_keeps_its_last_good_checkpoints",),
    ),
    Mutation(
        "resume-from-scratch-folder",
        "ckpt_path=<run folder> continues that run (not from scratch in the same folder)",
        "train.py",
        "trainer.fit(task, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)",
        "trainer.fit(task, datamodule=datamodule, ckpt_path=None, weights_only=True)",
        ("tests/test_robustness.py::test_ckpt_path_to_a_run_folder_resumes_it_and_later_overrides_win",),
    ),
    Mutation(
        "ckpt-file-same-folder",
        "ckpt_path=<file> starts a new run folder, at the checkpoint's step",
        "run/resume.py",
        'if key == "resume" or (key == "ckpt_path" and value and Path(value).expanduser().is_dir()):',
        'if key == "resume" or (key == "ckpt_path" and value and Path(value).expanduser().exists()):',
        ("tests/test_train.py::test_ckpt_path_to_a_file_starts_a_new_run_at_the_checkpoints_step",),
    ),
    Mutation(
        "ddp-shard-e2e",
        "every DDP rank trains and evaluates its own shard (the real 2-process run alone)",
        "data/base.py",
        "            rank, world = self.trainer.global_rank, self.trainer.world_size\n",
        "            rank, world = 0, 1\n",
        ("tests/test_ddp.py::test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split",),
    ),
    Mutation(
        "model-checkpoint-guard-off",
        "a resumed ModelCheckpoint state naming files outside the run (../ paths) is ignored",
        "run/callbacks.py",
        '        state = dict(state_dict)\n        stored_dir = state.get("dirpath")\n',
        "        return super().load_state_dict(state_dict)\n",
        (
            "tests/test_security.py::test_resume_never_removes_a_file_that_the_checkpoint_names_outside_the_run",
            "tests/test_security.py::test_the_model_checkpoint_guard_refuses_dot_dot_paths_that_lightnings_own_check_accepts",
        ),
    ),
    Mutation(
        "grouped-hooks-skipped",
        "with K mini-batches per Lightning step, callbacks' optimizer-step hooks run on every step",
        "tasks/grouped.py",
        "            self.manual_backward(loss)  # the precision",
        "            loss.backward()  # the precision",
        ("tests/tasks/test_classifier.py::test_callbacks_see_the_per_step_hooks_on_every_optimizer_step",),
    ),
    Mutation(
        "scheduler-dropped",
        "scheduler=... is the scheduler trained with",
        "tasks/classifier.py",
        "        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler\n",
        "        self.optimizer_factory, self.scheduler_factory = optimizer, None\n",
        ("tests/test_train.py::test_every_part_swaps",),
    ),
    Mutation(
        "activation-ignored",
        "model.activation=... is the activation in the net",
        "models/mlp.py",
        "layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]",
        "layers += [nn.Linear(width, hidden), nn.ReLU()]",
        ("tests/test_train.py::test_every_part_swaps",),
    ),
    Mutation(
        "bf16-ignored",
        "trainer.precision=bf16-mixed trains in bfloat16",
        "run/build.py",
        "        return instantiate(trainer_cfg, **kwargs)\n",
        '        return instantiate(trainer_cfg, **{**kwargs, "precision": "32-true"})\n',
        ("tests/test_ddp.py::test_bf16_mixed_precision_runs_on_cpu",),
    ),
    Mutation(
        "torchrun-name",
        "every process of a torchrun launch shares the folder torchrun-<rendezvous id>",
        "run/paths.py",
        '        return f"torchrun-{elastic}"\n',
        '        return f"{elastic}"\n',
        ("tests/test_ddp.py::test_torchrun_processes_share_one_run_folder_named_after_the_rendezvous",),
    ),
    Mutation(
        "summary-per-job",
        "a sweep's summary is rewritten after each job (a killed sweep keeps it)",
        "summary/cli.py",
        "            write_summary(Path(config.hydra.sweep.dir))\n",
        "            pass\n",
        ("tests/test_summary_ranking.py::test_a_killed_sweep_keeps_the_summary_of_every_finished_job",),
    ),
    Mutation(
        "resume-with-m",
        "resume=<run> -m is refused with one message",
        "run/resume.py",
        '    if {"-m", "--multirun"} & set(args):\n',
        "    if False:\n",
        ("tests/test_resume_errors.py",),
    ),
    # --- issue 23: survivors of a hand-planted round, each now caught (tests/test_guards.py, test_ddp.py) ---
    Mutation(
        "hydra-narrowed",
        "a run folder's saved overrides set no hydra.* key of any kind (hydra.job.env_set.* too)",
        "run/resume.py",
        '    if parts[0] == "hydra":\n',
        '    if parts[0] == "hydra" and parts[1:2] in (["callbacks"], ["launcher"], ["sweeper"]):\n',
        ("tests/test_guards.py::test_a_run_folder_sets_no_hydra_key_of_any_kind",),
    ),
    Mutation(
        "links-inside",
        "a link inside a run folder's .hydra/, checkpoints/ or tensorboard/ is refused on resume",
        "run/paths.py",
        "            places += folder.iterdir()\n",
        "            pass\n",
        (
            "tests/test_guards.py::"
            "test_a_link_inside_a_run_folders_hydra_checkpoints_or_tensorboard_is_refused",
        ),
    ),
    Mutation(
        "ddp-val-unsynced",
        "val/* under DDP cover the whole validation split (not an average of the ranks' values)",
        "tasks/classifier.py",
        "self.val_stats, self.test_stats = EpochStats(), EpochStats(), EpochStats()\n",
        "self.val_stats, self.test_stats = EpochStats(), EpochStats(), EpochStats()\n"
        "        self.val_stats.sync_on_compute = self.val_stats._to_sync = False\n",
        ("tests/test_ddp.py::test_ddp_each_rank_takes_its_shard_and_metrics_cover_the_split",),
    ),
    Mutation(
        "finite-guard",
        "a non-finite training loss stops the run at its epoch and step, the last good checkpoint kept",
        "tasks/classifier.py",
        "        step = int(self.first_nonfinite)  # one host sync, at epoch end or before a checkpoint\n",
        "        step = -1\n",
        (
            "tests/test_guards.py::"
            "test_a_diverging_run_stops_at_its_first_non_finite_step_and_keeps_its_last_good_checkpoint",
        ),
    ),
    Mutation(
        "pruning-step",
        "a trial reports epoch N (from 1) as Optuna step N-1; the warmup ends where the docs say",
        "sweeps/pruning.py",
        "trial.report(float(value), step=trainer.current_epoch)",
        "trial.report(float(value), step=trainer.current_epoch + 1)",
        (
            "tests/test_guards.py::"
            "test_a_pruned_trial_reports_each_epoch_as_its_step_and_stops_right_after_the_warmup",
        ),
    ),
    Mutation(
        "pruned-epoch",
        "a pruned trial's result.json and summary name the epoch the pruner stopped it at",
        "sweeps/pruning.py",
        "pruned_epoch = trainer.current_epoch + 1",
        "pruned_epoch = trainer.current_epoch",
        (
            "tests/test_guards.py::"
            "test_a_pruned_trial_reports_each_epoch_as_its_step_and_stops_right_after_the_warmup",
        ),
    ),
    Mutation(
        "predict-inf",
        "a predict point with an infinite coordinate is its own error row",
        "predict.py",
        "            if all(math.isfinite(v) for v in item):\n",
        "            if not any(math.isnan(v) for v in item):\n",
        ("tests/test_predict.py::test_predict_gate_points",),
    ),
    Mutation(
        "job-folder-swapped",
        "a re-run grid refuses a job folder that holds another job's result.json (nothing overwritten)",
        "sweeps/resume.py",
        'same = previous is not None and same_job(previous.get("overrides"), overrides)',
        "same = previous is not None",
        ("tests/test_guards.py::test_a_rerun_grid_refuses_a_job_folder_that_holds_another_jobs_result",),
    ),
    Mutation(
        "interrupted-first",
        "resume starts from the newer last.ckpt, never from an older interrupted.ckpt",
        "io/checkpoint.py",
        'for name in ("last.ckpt", "interrupted.ckpt"):',
        'for name in ("interrupted.ckpt", "last.ckpt"):',
        ("tests/test_guards.py::test_an_older_interrupted_checkpoint_never_wins_over_a_newer_last",),
    ),
    Mutation(
        "saved-counts-uncapped",
        "a run folder's saved overrides ask for no more data copies or workers than a checkpoint may",
        "run/resume.py",
        '    if parts[0] == "data" and parts[-1] in MAX_COUNTS',
        '    if False and parts[0] == "data" and parts[-1] in MAX_COUNTS',
        (
            "tests/test_guards.py::test_a_run_folder_asks_for_no_more_data_copies_or_workers_than_a_checkpoint_may",
        ),
    ),
]


def apply(mutation: Mutation, src: Path) -> None:
    path = src / "neuronlab" / mutation.file
    text = path.read_text()
    if text.count(mutation.old) != 1:
        raise SystemExit(
            f"{mutation.name}: the code to change is no longer in {mutation.file} (once); update"
        )
    path.write_text(text.replace(mutation.old, mutation.new))


def main(names: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not names or m.name in names]
    survived = []
    for mutation in chosen:
        with tempfile.TemporaryDirectory(prefix="neuronlab-mutant-") as scratch:
            src = Path(scratch) / "src"
            shutil.copytree(REPO / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
            apply(mutation, src)
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(src), str(REPO)]),
                "NEURONLAB_CONF_DIR": str(REPO / "conf"),
            }
            start = time.time()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            )
        if done.returncode not in (0, 1):  # 1: tests failed; anything else: they could not run
            raise SystemExit(
                f"{mutation.name}: pytest could not run:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        caught = done.returncode == 1
        failed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
        verdict = f"caught by {failed[0]}" if failed else done.stdout.strip().splitlines()[-1]
        seconds = time.time() - start
        print(f"{'caught  ' if caught else 'SURVIVED'} {mutation.name:22} {seconds:4.0f} s  {verdict}")
        print(f"         {mutation.promise}")
        if not caught:
            survived.append(mutation.name)
    if survived:
        print(f"survived: {', '.join(survived)}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
