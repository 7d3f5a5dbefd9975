#!/usr/bin/env bash
# Mutation testing of neuronlab's core modules with mutmut (pip install -e ".[dev]").
#
#   bash scripts/mutation.sh                 # every module below
#   bash scripts/mutation.sh data resume     # some of them
#
# Each module is mutated in its own scratch copy of the repository (.mutation/<module>/, git-ignored;
# the working tree is never changed) and each mutant runs only that module's fast, in-process tests
# (mutmut forks one process per mutant and runs the tests that call the mutated function). Prints
# "<module>: killed/total" per module and leaves the survivors in .mutation/<module>/survivors.txt
# (`cd .mutation/<module> && mutmut show <name>` shows one). Known equivalent mutants: docs/mutation.md.
# The promises of README (resume, DDP, atomic writes, ranking) are also broken one by one, with their
# slower end-to-end tests, by scripts/mutation_table.py.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python}"
children="${MUTATION_CHILDREN:-2}"

# resume_argv on hand-made run folders: no training, fast (also exercise checkpoint.py's loader)
RESUME_TESTS="tests/test_resume_errors.py::test_resume_argv_gives_the_runs_checked_overrides_its_folder_and_last_checkpoint
tests/test_resume_errors.py::test_a_completed_run_is_left_alone_unless_asked_for_more_epochs
tests/test_resume_errors.py::test_a_run_that_stopped_early_says_how_to_train_on
tests/test_resume_errors.py::test_resume_argv_refuses_what_cannot_resume
tests/test_resume_errors.py::test_a_run_of_one_epoch_and_odd_records"
# module -> files to mutate | mutant name patterns (empty: all) | fast tests that guard them
declare -A FILES PATTERNS TESTS
FILES[data]="src/neuronlab/data/loader.py src/neuronlab/data/base.py"
PATTERNS[data]=""
TESTS[data]="tests/data/test_loader.py::test_yields_torchvisions_samples_each_exactly_once_per_epoch
tests/data/test_loader.py::test_order_changes_across_epochs_and_repeats_for_the_same_seed
tests/data/test_loader.py::test_ddp_shards_cover_the_split_without_overlap
tests/data/test_loader.py::test_lightning_sets_the_epoch_through_the_sampler_hook
tests/data/test_loader.py::test_the_datamodule_hands_each_rank_of_its_trainer_its_own_shard
tests/data/test_loader.py::test_loader_checks_its_arguments_and_keeps_its_defaults
tests/data/test_loader.py::test_len_is_the_number_of_batches_yielded
tests/data/test_loader.py::test_datamodule_checks_batch_sizes_and_records_how_to_rebuild_it
tests/data/test_gates.py"
FILES[classifier]="src/neuronlab/tasks/classifier.py"
PATTERNS[classifier]="*EpochStats* *Classifier*_correct* *Classifier*on_save_checkpoint* *Classifier*on_load_checkpoint* *Classifier*configure_optimizers*"
TESTS[classifier]="tests/tasks/test_classifier.py
tests/tasks/test_classifier_edges.py
tests/test_train.py::test_every_part_swaps[overrides0-expected0]
tests/test_train.py::test_every_part_swaps[overrides2-expected2]
tests/test_train.py::test_every_part_swaps[overrides3-expected3]
tests/test_robustness.py::test_diverging_training_stops_naming_epoch_and_step_and_keeps_the_last_good_checkpoint
tests/test_robustness.py::test_resume_continues_bit_for_bit_and_the_curves_exactly"
FILES[checkpoint]="src/neuronlab/io/checkpoint.py"
PATTERNS[checkpoint]="*AtomicCheckpointIO* *resolve_checkpoint* *epochs_done*"
TESTS[checkpoint]="$RESUME_TESTS
tests/test_atomic_write.py::test_a_failed_write_keeps_the_previous_checkpoint_byte_for_byte
tests/test_atomic_write.py::test_the_first_write_failing_leaves_no_file_under_the_name
tests/test_atomic_write.py::test_lightning_resumes_through_the_safe_loader_and_missing_files_are_named
tests/test_atomic_write.py::test_epochs_done_reads_lightnings_count_and_nothing_else"
FILES[resume]="src/neuronlab/run/resume.py"
PATTERNS[resume]="*resume_argv* *check_not_complete* *_saved_max_epochs* *_read_result*"
TESTS[resume]="$RESUME_TESTS"
FILES[summary]="src/neuronlab/summary/table.py"
PATTERNS[summary]="*summarize*"
TESTS[summary]="tests/test_summary_ranking.py::test_equal_metrics_rank_the_lower_validation_loss_first
tests/test_summary_ranking.py::test_jobs_without_the_metric_or_with_an_unknown_status_rank_last
tests/test_summary_ranking.py::test_a_sweep_of_one_job
tests/test_sweeps.py::test_summary_ranks_best_first_with_swept_columns_and_failed_last
tests/test_sweeps.py::test_a_loss_metric_ranks_lowest_first"

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(data classifier checkpoint resume summary)
for module in "${modules[@]}"; do
  [ -n "${FILES[$module]:-}" ] || { echo "unknown module $module (known: ${!FILES[*]})" >&2; exit 2; }
  work="$repo/.mutation/$module"
  rm -rf "$work" && mkdir -p "$work"
  cp -r "$repo/src" "$repo/conf" "$repo/tests" "$work/"
  # mutmut reads setup.cfg when pyproject.toml has no [tool.mutmut]; pytest's settings stay pyproject's
  cp "$repo/pyproject.toml" "$work/"
  {
    echo "[mutmut]"
    echo "source_paths = src/neuronlab"
    echo "only_mutate ="; for f in ${FILES[$module]}; do echo "    $f"; done
    echo "pytest_add_cli_args = -p no:cacheprovider -p no:randomly -q"
    echo "pytest_add_cli_args_test_selection ="; while read -r t; do echo "    $t"; done <<< "${TESTS[$module]}"
    echo "timeout_multiplier = 15.0"
    echo "timeout_constant = 10.0"  # a busy 2-core machine: slow is not stuck
    echo "process_isolation = forkserver"  # forking a process that trained with torch threads can hang
  } > "$work/setup.cfg"
  start=$(date +%s)
  (
    cd "$work"
    export NEURONLAB_CONF_DIR="$work/conf"
    set -f  # the patterns are mutmut's, not the shell's
    # shellcheck disable=SC2086
    "$python" -m mutmut run --max-children "$children" ${PATTERNS[$module]} > run.log 2>&1 || true
    "$python" -m mutmut results --all true > results.txt 2>&1 || true
  )
  # mutants outside the patterns are "not checked": not counted
  total=$(grep ": " "$work/results.txt" | grep -vc ": not checked$" || true)
  killed=$(grep -cE ": (killed|timeout|caught by type check)$" "$work/results.txt" || true)
  timeouts=$(grep -cE ": timeout$" "$work/results.txt" || true)
  grep ": " "$work/results.txt" | grep -vE ": (killed|timeout|caught by type check|not checked)$" \
    > "$work/survivors.txt" || true
  echo "$module: $killed/$total mutants killed ($timeouts by timeout) in $(( $(date +%s) - start )) s;" \
    "survivors: .mutation/$module/survivors.txt"
done
