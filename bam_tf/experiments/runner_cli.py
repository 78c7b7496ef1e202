"""bam-experiments --flagfile=configs/experiments/<name>.flags [--dry_run]
(the same as python tools/run_experiments.py --flagfile=...)

Runs the grid of (method, seed) needed to test the BAM paper's claim — a Single→Multi student with
teacher annealing beats its single-task teachers and plain multi-task training — and appends each
finished run's dev scores to a JSON-lines results file (`tools/report.py` turns that into tables, tests
and plots). The flagfile holds ordinary bam_tf flags (shared by every method: no per-method tuning) plus:

  --methods=single,multi,bam,...   which methods (see below)
  --seeds=0,1,2                    one run per method and seed (weights, dropout and data order follow it)
  --experiment_dir=DIR             every run's --model_dir lives under it (DIR/<method>/seed<k>/)
  --results_file=FILE.jsonl        one line per finished (method, seed, task)
  --teacher_outputs_store=DIR      optional: keeps each seed's teacher outputs (small; commit it) so a
                                   grid continues elsewhere without retraining that seed's teachers
  --dry_run                        print the plan and stop

Methods (each run is BamPipeline in this process with its own BamConfig):

  single             one single-task model per task: the teachers, DIR/single/seed<k>/teachers/<TASK>
  multi              multi-task model without distillation (--nodistill)
  bam                Single→Multi, teacher annealing; teachers = the `single` models of the same seed
  bam_no_anneal      as bam with --noteacher_annealing --distill_weight=0.5
  multi_to_multi     teacher = the `multi` model of the same seed (its outputs on each train split)
  born_again_single  per task, a single-task student of that task's teacher (same seed), annealed, with
                     the single-task hyper-parameters (teacher_learning_rate/batch_size/epochs)
  bam_ensemble       teacher outputs averaged (logits; STS-B scores) over every seed's `single` teachers

A teacher is trained once per task and seed and reused by every method that needs it (methods that need
teachers or the multi model train them if their own method is not in --methods, without recording them).
Resuming: (method, seed) pairs whose lines are all in the results file are skipped (after checking they
were made with the same flags); a half-done run continues from its checkpoint in its model_dir. A line is
only complete once its newline is written (one write + fsync per finished run); a truncated last line
left by a kill is reported and dropped. One runner at a time per --experiment_dir and per --results_file
(<results_file>.lock): a second one stops at once, naming the first. Teachers or a student already in the
experiment dir but trained with other flags are refused rather than reused. The experiment dir holds every
model (hundreds of MB a seed); where it does not survive (another machine, a fresh checkout), finished runs
are still skipped through the results file, and
with --teacher_outputs_store (e.g. results/<name>_teacher_outputs, committed beside the results file) the
methods that distill from a seed's teachers (bam, bam_no_anneal, born_again_single, bam_ensemble) take
their outputs from there when it holds them, without the teachers: DIR/seed<k>/<TASK>.npz and
teacher_flags.json (outputs of teachers trained with other flags or other definitions of --task_defs tasks
are refused; flags only the student reads, such as --learning_rate or --temperature, may differ).

A results line: method, seed, task, metrics (the task's GLUE dev metrics), score (their mean, the GLUE task
score), wall_time_s (seconds this invocation spent on the (method, seed), dependencies included; a run that
`resumed` counts only its remaining part), training_steps and train_examples of the model's run, its
precision (what --precision resolved to) and device (e.g. the CPU model and its bfloat16 flags; a model resumed
elsewhere gives each with its steps: "mixed_bfloat16 for steps 1–800, float32 for steps 801–4581"), model_dir,
flags (that run's full BamConfig), user_tasks (with --task_defs: what its tasks are defined as, compared
like the flags, where their files lie aside), git_commit / git_dirty of bam_tf, finished_at.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bam_tf.config import SEEDS, BamConfig, config_values_from_flags, define_flags  # noqa: E402  (no TensorFlow: a --dry_run stays fast)
from bam_tf.experiments.experiment import Experiment  # noqa: E402
from bam_tf.experiments.methods import METHODS  # noqa: E402
from bam_tf.experiments.results_file import ExperimentError  # noqa: E402
from bam_tf.user_errors import InputError, exit_status_of  # noqa: E402

# Per-run settings the runner owns; an experiment flagfile may not set them.
RUNNER_OWNED_FLAGS = {"model_dir": "each run's model_dir is <experiment_dir>/<method>/seed<k>",
                      "mode": "the runner runs the stages each method needs", "seed": "use --seeds",
                      "distill": "set per method", "teacher_annealing": "set per method",
                      "distill_weight": "set per method (bam_no_anneal: 0.5)"}


def define_runner_flags(flag_values=None) -> None:
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values  # an empty FlagValues is falsy
    define_flags(flag_values)
    flags.DEFINE_list("methods", "single,multi,bam", f"Methods to run, from: {', '.join(METHODS)}.",
                      flag_values=flag_values)
    flags.DEFINE_list("seeds", "0,1,2", "Seeds; every method runs once per seed.", flag_values=flag_values)
    flags.DEFINE_string("experiment_dir", "", "Folder holding every run's model_dir (required).",
                        flag_values=flag_values)
    flags.DEFINE_string("results_file", "", "JSON-lines results file, appended to (required).",
                        flag_values=flag_values)
    flags.DEFINE_string("teacher_outputs_store", "",
                        "Folder keeping each seed's single-task teacher outputs on the train splits "
                        "(<dir>/seed<k>/<TASK>.npz): written once the teachers' outputs exist, read when the "
                        "experiment dir lacks them, so those teachers need not be trained again. Optional.",
                        flag_values=flag_values)
    flags.DEFINE_bool("dry_run", False, "Print the plan (done / to do) and stop.", flag_values=flag_values)


def experiment_from_flags(flag_values, backend=None) -> Experiment:
    owned = [name for name in RUNNER_OWNED_FLAGS if flag_values[name].present]
    if owned:
        raise ExperimentError("set by the runner, not in an experiment flagfile: "
                              + "; ".join(f"--{name} ({RUNNER_OWNED_FLAGS[name]})" for name in owned))
    values = config_values_from_flags(flag_values)
    # The runner's own paths, like the run's: a leading ~ is the home folder, in a flagfile too.
    experiment_dir, results_file, teacher_outputs_store = (
        os.path.expanduser(flag_values[name].value)
        for name in ("experiment_dir", "results_file", "teacher_outputs_store"))
    values["model_dir"] = experiment_dir
    try:
        seeds = [int(seed) for seed in flag_values.seeds]
    except ValueError:
        raise ExperimentError(f"--seeds must be integers, got {flag_values.seeds}") from None
    if any(seed not in SEEDS for seed in seeds):
        raise ExperimentError(f"--seeds must be in [0, 2^32), got {flag_values.seeds}")
    base = BamConfig.from_dict(values)
    return Experiment(base, [m.strip() for m in flag_values.methods], seeds, experiment_dir, results_file,
                      backend=backend, teacher_outputs_store=teacher_outputs_store)


def main(argv) -> int:
    from absl import flags, logging

    from bam_tf.cli_help import flag_error

    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        experiment = experiment_from_flags(flags.FLAGS)
    except InputError as error:
        return flag_error(str(error))
    if flags.FLAGS.dry_run:
        return exit_status_of(experiment.dry_run)
    logging.set_verbosity(logging.INFO)
    return exit_status_of(experiment.run, on_interrupt="finished runs are in the results file; the same command "
                                                       "goes on from the latest checkpoint of the run it stopped in")


def console_main() -> None:
    """The `bam-experiments` command (pyproject.toml); the same as python tools/run_experiments.py."""
    from absl import app, flags

    from bam_tf import config
    from bam_tf.cli_help import list_flags_in_help, parse_flags

    define_runner_flags()
    list_flags_in_help(flags.FLAGS, [config, sys.modules[__name__]], __doc__, refused=RUNNER_OWNED_FLAGS)
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    console_main()
