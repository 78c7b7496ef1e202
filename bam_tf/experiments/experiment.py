"""An experiment: every (method, seed) of a grid, run in turn, each finished one appended to the results file.

What a grid runs, how it resumes and what a results line holds: bam_tf/experiments/runner_cli.py
(`bam-experiments --help`). Training goes through a backend (`pipeline_backend.PipelineBackend`:
BamPipeline in this process); it, and `is_trained` (which reads a model folder through keras-hub), are the
only TensorFlow imports, made only once something is to run: a --dry_run makes neither.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import subprocess
import time
from collections.abc import Callable, Iterable

from bam_tf import atomic_files, metrics
from bam_tf.config import STUDENT_ONLY_FLAGS, BamConfig
from bam_tf.experiments.ensemble_outputs import (ENSEMBLE_SEEDS_KEY, check_ensemble_seeds, ensemble_seeds_record,
                                                 write_ensemble_outputs)
from bam_tf.experiments.methods import (DISTILL_FROM_SINGLE, METHODS, USER_TASKS_KEY, changed_settings,
                                        method_configs)
from bam_tf.experiments.results_file import ExperimentError, append_results, latest_records, read_results
from bam_tf.experiments.teacher_outputs_store import TeacherOutputsStore, copy_outputs, missing_outputs
from bam_tf.run_layout import DEV_RESULTS, TRAINING_SUMMARY, RunLayout
from bam_tf.run_lock import exclusive_file, exclusive_run_dir
from bam_tf.task_defs import definition_of
from bam_tf.task_set import TaskSet, task_set_of
from bam_tf.teacher_outputs import TeacherOutputsError
from bam_tf.training_segments import trained_in

BAM_TF_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def eval_task_names(task_set: TaskSet, task_names: Iterable[str]) -> list[str]:
    """Dev sets scored for these training tasks (MNLI is also scored on dev-mismatched)."""
    return [eval_task.name for name in task_names for eval_task in task_set.dev_tasks(task_set.get(name))]


def git_commit(own_outputs: Iterable[str] = ()) -> dict:
    """The commit of the bam_tf checkout, and whether it has uncommitted changes (None outside git). Changes
    to `own_outputs` (files or folders: the experiment's results file, say, kept in the repository) are the
    experiment's own writes, not changes to the code."""
    def git(*args):
        return subprocess.run(["git", "-C", BAM_TF_DIR, *args], capture_output=True, text=True, timeout=30)
    try:
        head, top = git("rev-parse", "HEAD"), git("rev-parse", "--show-toplevel")
        if head.returncode != 0 or top.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = git("status", "--porcelain", "-z", "--untracked-files=no")
        changed, entries = [], iter(status.stdout.split("\0"))
        for entry in entries:  # "XY path"; a rename or copy is followed by its source path (changed too)
            if len(entry) > 3:
                changed.append(os.path.join(top.stdout.strip(), entry[3:]))
                if {"R", "C"} & set(entry[:2]):
                    changed.append(os.path.join(top.stdout.strip(), next(entries, "")))
        own = [os.path.realpath(path) for path in own_outputs if path]
        dirty = any(not any(_is_within(os.path.realpath(path), o) for o in own) for path in changed)
        return {"git_commit": head.stdout.strip(), "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def _is_within(path: str, directory_or_file: str) -> bool:
    return path == directory_or_file or path.startswith(directory_or_file.rstrip(os.sep) + os.sep)


def is_trained(model_dir: str) -> bool:
    from bam_tf.trained_model import is_trained_model_dir  # imports keras-hub: never on a --dry_run
    return is_trained_model_dir(model_dir)


@dataclasses.dataclass(frozen=True)
class RunKey:
    method: str
    seed: int

    def __str__(self) -> str:
        return f"{self.method} seed {self.seed}"


@dataclasses.dataclass
class PlanItem:
    key: RunKey
    done: bool
    detail: str


class Experiment:
    def __init__(self, base: BamConfig, methods: list[str], seeds: list[int], experiment_dir: str,
                 results_file: str, backend=None, out: Callable[[str], None] | None = None,
                 teacher_outputs_store: str = ""):
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ExperimentError(f"--methods: unknown {unknown or 'none given'}; choose from {', '.join(METHODS)}")
        if len(set(methods)) != len(methods) or len(set(seeds)) != len(seeds) or not seeds:
            raise ExperimentError("--methods and --seeds must be non-empty and without repeats")
        if not experiment_dir or not results_file:
            raise ExperimentError("--experiment_dir and --results_file are required")
        # A folder where a file goes (or the reverse) surfaces here, not as a traceback after the first run
        # (permissions are not asked of a dry run, nor of a store that is only read).
        for path, name, folder in ((experiment_dir, "--experiment_dir", True), (results_file, "--results_file", False),
                                   (teacher_outputs_store, "--teacher_outputs_store", True)):
            if path:
                atomic_files.check_path_kind(path, f"{name}={path}", folder=folder)
        self.base = base
        self.methods = [m for m in METHODS if m in methods]
        self.seeds = list(seeds)
        self.experiment_dir = experiment_dir
        self.results_file = results_file
        self._backend = backend
        self.store = TeacherOutputsStore(teacher_outputs_store) if teacher_outputs_store else None
        self.task_set = task_set_of(base.task_defs)  # GLUE's and the user's own tasks (TensorFlow-free)
        self.tasks = [task.name for task in self.task_set.parse_list(base.tasks)]
        # Recorded beside the flags (results lines, the store, compared with run folders' task_defs.json).
        self.user_tasks = self.user_task_definitions(self.tasks)
        self.out = out or (lambda text: print(text, flush=True))
        self._provenance: dict | None = None
        for key in self.keys():  # every run's flags must be valid before anything starts
            for config in self.configs(key).values():
                try:
                    config.validate()
                except ValueError as error:
                    raise ExperimentError(f"{key}: {error}") from None

    def user_task_definitions(self, tasks: list[str]) -> dict:
        """{USER_TASKS_KEY: the definitions of the user's own tasks among `tasks`}, or {} if there are none."""
        definitions = [definition_of(t) for t in map(self.task_set.get, tasks) if t.is_user_task]
        return {USER_TASKS_KEY: definitions} if definitions else {}

    @property
    def backend(self):
        if self._backend is None:
            from bam_tf.experiments.pipeline_backend import PipelineBackend  # imports TensorFlow
            self._backend = PipelineBackend()
        return self._backend

    # ---- layout and per-run flags ---------------------------------------------------------------
    def run_dir(self, method: str, seed: int) -> str:
        return os.path.join(self.experiment_dir, method, f"seed{seed}")

    def configs(self, key: RunKey) -> dict[str, BamConfig]:
        """Training task → the flags of the run that trained its model (what its results line records)."""
        return method_configs(self.base, key.method, key.seed, self.run_dir(key.method, key.seed), self.tasks)

    def single_config(self, seed: int, mode: str = "teachers") -> BamConfig:
        return dataclasses.replace(self.configs(RunKey("single", seed))[self.tasks[0]], mode=mode)

    def keys(self) -> list[RunKey]:
        """Seed by seed (a whole seed is done early), bam_ensemble last (it needs every seed's teachers)."""
        keys = [RunKey(m, s) for s in self.seeds for m in self.methods if m != "bam_ensemble"]
        if "bam_ensemble" in self.methods:
            keys += [RunKey("bam_ensemble", s) for s in self.seeds]
        return keys

    def teacher_dir(self, seed: int, task: str) -> str:
        return RunLayout(self.run_dir("single", seed)).teacher_dir(task)

    def teacher_outputs_dir(self, method: str, seed: int) -> str:
        return RunLayout(self.run_dir(method, seed)).teacher_outputs_dir

    # ---- plan ------------------------------------------------------------------------------------
    def check_data(self) -> None:
        """Every file the runs read exists (GlueDataError naming the first that does not): a dry run says so,
        and a real one stops before its first run, not after hours of others. A GLUE task read through
        tensorflow_datasets is checked when it is read."""
        from bam_tf.glue_reader import split_file  # numpy, not TensorFlow

        for task in map(self.task_set.get, self.tasks):
            for read, split in [(task, "train"), *((dev_task, "dev") for dev_task in self.task_set.dev_tasks(task))]:
                if read.is_user_task or self.base.data_source == "tsv":
                    split_file(self.base.glue_dir, read, split)

    def expected_tasks(self) -> list[str]:
        return eval_task_names(self.task_set, self.tasks)

    def plan(self) -> tuple[list[PlanItem], str | None]:
        records, warning = read_results(self.results_file)
        latest = latest_records(records)
        items, unrecorded_ensembles = [], set()
        for key in self.keys():
            configs = self.configs(key)
            present = []
            for task in self.expected_tasks():
                record = latest.get((key.method, key.seed, task))
                if record is None:
                    continue
                self._check_same_flags(key, task, record, configs[self.task_set.get(task).head])
                if key.method == "bam_ensemble" and ENSEMBLE_SEEDS_KEY in record:
                    check_ensemble_seeds(record[ENSEMBLE_SEEDS_KEY], self.seeds,
                                         f"{self.results_file} holds {key} ({task})")
                elif key.method == "bam_ensemble":
                    unrecorded_ensembles.add(key.seed)
                present.append(task)
            expected = self.expected_tasks()
            if len(present) == len(expected):
                items.append(PlanItem(key, True, "done"))
                continue
            details = []
            if present:
                details.append(f"{len(present)} of {len(expected)} task lines recorded")
            dirs = {config.model_dir for config in configs.values()}
            if any(os.path.exists(RunLayout(d).config_path) for d in dirs):
                details.append(f"continues in {self.run_dir(key.method, key.seed)}")
            self._check_reused_run_dirs(key)
            if key.method in DISTILL_FROM_SINGLE - {"bam_ensemble"} and self._outputs_only_in_store(key.seed):
                self.store.check_flags(key.seed, self._teacher_flags(key.seed))  # as the run will
                details.append(f"teacher outputs from {self.store.seed_dir(key.seed)}")
            items.append(PlanItem(key, False, "to do" + (f" ({'; '.join(details)})" if details else "")))
        if unrecorded_ensembles:
            warning = "; ".join(filter(None, [warning, (
                f"{self.results_file}: bam_ensemble seed(s) {', '.join(map(str, sorted(unrecorded_ensembles)))} "
                "were recorded before bam_tf noted which seeds' teachers an ensemble averages: they count as done, "
                f"but whether they averaged seeds {', '.join(map(str, self.seeds))} cannot be checked")]))
        return items, warning

    def _check_reused_run_dirs(self, key: RunKey) -> None:
        """The run folders a run still to do would go on in (teachers, a started student) hold its flags:
        else the run would stop there, after the runs before it, where a dry run had seen nothing wrong."""
        if key.method == "single" or key.method in DISTILL_FROM_SINGLE:
            for seed in (self.seeds if key.method == "bam_ensemble" else [key.seed]):
                self._refuse_other_flags(self.run_dir("single", seed), self.single_config(seed),
                                         f"seed {seed}'s teachers", ignored=STUDENT_ONLY_FLAGS)
        if key.method == "bam_ensemble":
            ensemble_seeds_record(self.teacher_outputs_dir("bam_ensemble", key.seed), self.seeds, self.tasks)
        students = [] if key.method == "single" else list(self.configs(key).values())
        if key.method == "multi_to_multi":
            students += self.configs(RunKey("multi", key.seed)).values()
        for config in students:
            self._refuse_other_flags(config.model_dir, config, "a student")

    def _check_same_flags(self, key: RunKey, task: str, record: dict, config: BamConfig) -> None:
        ignored = STUDENT_ONLY_FLAGS if key.method == "single" else ()  # the teachers never read them
        recorded = {**{k: v for k, v in (record.get("flags") or {}).items() if k not in ignored},
                    **{k: v for k, v in record.items() if k == USER_TASKS_KEY}}
        details = changed_settings(recorded, {**{k: v for k, v in config.to_dict().items() if k not in ignored},
                                              **self.user_tasks})
        if details:
            raise ExperimentError(f"{self.results_file} holds {key} ({task}) from a run with other flags ({details}); "
                                  "use another --results_file and --experiment_dir for other settings")

    def print_plan(self) -> list[PlanItem]:
        items, warning = self.plan()
        if warning:
            self.out(f"warning: {warning}")
        done = sum(item.done for item in items)
        provenance = self.provenance()
        commit = provenance["git_commit"]
        commit_text = (commit[:12] + (" (with uncommitted changes)" if provenance["git_dirty"] else "")
                       if commit else "unknown")
        self.out(f"Experiment {self.experiment_dir} → {self.results_file}")
        self.out(f"  tasks: {', '.join(self.tasks)}; methods: {', '.join(self.methods)}; "
                 f"seeds: {', '.join(map(str, self.seeds))}; backbone: {self.base.backbone}")
        self.out(f"  bam_tf commit: {commit_text}")
        for item in items:
            self.out(f"  {item.key.method:<18} seed {item.key.seed:<3} {item.detail}")
        self.out(f"  {done} done, {len(items) - done} to do" + self._estimate([i for i in items if not i.done]))
        return items

    def _estimate(self, todo: list[PlanItem]) -> str:
        """What the runs to do cost at the median wall time of this results file's whole runs per method."""
        from bam_tf.experiments.report_results import Results
        from bam_tf.experiments.report_runs import duration_text, seed_costs

        records, _ = read_results(self.results_file)
        costs = seed_costs(Results(records)) if records and todo else {}
        timed = [item for item in todo if item.key.method in costs]
        if not timed:
            return ""
        untimed = sorted({item.key.method for item in todo} - set(costs))
        return (f"; about {duration_text(sum(costs[item.key.method] for item in timed))} for "
                f"{'them' if len(timed) == len(todo) else f'{len(timed)} of them'} at the median time of the "
                "finished whole runs of each method in the results file (less where a run continues"
                + (f"; no timed run of {', '.join(untimed)} yet" if untimed else "") + ")")

    def provenance(self) -> dict:
        if self._provenance is None:
            self._provenance = git_commit([self.results_file, self.experiment_dir,
                                           self.store.directory if self.store else ""])
        return self._provenance

    def dry_run(self) -> list[PlanItem]:
        """The plan, then whether the data files of the runs to do are there (ExperimentError if not)."""
        items = self.print_plan()
        if not all(item.done for item in items):
            self.check_data()
        return items

    # ---- running ---------------------------------------------------------------------------------
    def run(self) -> list[PlanItem]:
        """Every run still to do, in order. Holds --experiment_dir and --results_file for the whole time: a
        second runner on either stops at once (bam_tf.run_lock.RunDirBusyError) naming this one."""
        atomic_files.check_can_write(self.experiment_dir, f"--experiment_dir={self.experiment_dir}", folder=True)
        atomic_files.check_can_write(self.results_file, f"--results_file={self.results_file}", folder=False)
        with exclusive_run_dir(self.experiment_dir), exclusive_file(self.results_file):
            items = self.print_plan()
            todo = [item for item in items if not item.done]
            if todo:
                self.check_data()  # before the first run, not after hours of others
            started = time.time()
            for number, item in enumerate(todo, start=1):
                extra = item.detail.removeprefix("to do").strip()
                self.out(f"[{number}/{len(todo)}] {item.key}: starting" + (f" {extra}" if extra else ""))
                self.run_one(item.key)
                elapsed = time.time() - started
                remaining = elapsed / number * (len(todo) - number)
                self.out(f"[{number}/{len(todo)}] {item.key}: done; {elapsed / 60:.1f} min so far"
                         + (f", roughly {remaining / 60:.0f} min to go" if number < len(todo) else ""))
            self.out(f"all {len(items)} runs recorded in {self.results_file}")
            return items

    def run_one(self, key: RunKey) -> list[dict]:
        started = time.time()
        configs = self.configs(key)
        resumed = any(os.path.exists(RunLayout(c.model_dir).config_path) for c in configs.values())
        trained = self.execute(key)  # training task → (model dir, dev results, training summary)
        wall_time = time.time() - started
        previous = latest_records(read_results(self.results_file)[0])
        lines = []
        for task in self.expected_tasks():
            train_task = self.task_set.get(task).head
            model_dir, dev, summary = trained[train_task]
            if (key.method, key.seed, task) in previous:
                continue  # an earlier, interrupted write already recorded it
            if task not in dev.get("tasks", {}):
                raise ExperimentError(f"{os.path.join(model_dir, DEV_RESULTS)} has no {task} scores")
            task_metrics = dev["tasks"][task]
            config = configs[train_task]
            sizes = self.backend.train_sizes(config)
            if sizes and key.method == "single":  # each teacher trained on its own task only
                sizes = {train_task: sizes[train_task]}
            lines.append({
                "method": key.method, "seed": key.seed, "task": task, "metrics": task_metrics,
                "score": metrics.task_score(task_metrics), "wall_time_s": round(wall_time, 1), "resumed": resumed,
                "training_steps": summary.get("steps"), "train_examples": sizes,
                "precision": trained_in(summary, "precision"), "device": trained_in(summary, "device"),
                "model_dir": model_dir, "flags": config.to_dict(), **self.user_tasks, **self.provenance(),
                **({ENSEMBLE_SEEDS_KEY: self.seeds} if key.method == "bam_ensemble" else {}),
                "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
        if lines:
            dropped = append_results(self.results_file, lines)
            if dropped:
                self.out(f"warning: {dropped}")
        scores = ", ".join(f"{line['task']} {100 * line['score']:.1f}" for line in lines)
        self.out(f"  {key}: {scores} ({wall_time:.0f} s)")
        return lines

    def execute(self, key: RunKey) -> dict[str, tuple[str, dict, dict]]:
        """Train (or finish) whatever `key` needs; training task → (model dir, dev results, summary)."""
        method, seed = key.method, key.seed
        configs = self.configs(key)
        if method == "single":
            self.ensure_teachers(seed)
            return {task: self._model_results(self.teacher_dir(seed, task)) for task in self.tasks}
        if method == "born_again_single":
            self.ensure_teacher_outputs(seed)
            results = {}
            for task, config in configs.items():
                self._copy_teacher_outputs(self.teacher_outputs_dir("single", seed), config.model_dir, [task])
                results[task] = self.ensure_student(config)
            return results
        config = configs[self.tasks[0]]
        if method in ("bam", "bam_no_anneal"):
            self.ensure_teacher_outputs(seed)
            self._copy_teacher_outputs(self.teacher_outputs_dir("single", seed), config.model_dir, self.tasks)
        elif method == "multi_to_multi":
            multi = self.configs(RunKey("multi", seed))[self.tasks[0]]
            self.out(f"  {key}: teacher = multi seed {seed}")
            self.ensure_student(multi)
            missing = self._missing_outputs(self.teacher_outputs_dir(method, seed))
            if missing:
                self.out(f"  {key}: writing multi seed {seed}'s outputs on the train splits of {', '.join(missing)}")
                self.backend.write_teacher_outputs(config, RunLayout(multi.model_dir).student_dir,
                                                   self.teacher_outputs_dir(method, seed))
        elif method == "bam_ensemble":
            target = self.teacher_outputs_dir(method, seed)
            record = ensemble_seeds_record(target, self.seeds, self.tasks)
            for teacher_seed in self.seeds:
                self.ensure_teacher_outputs(teacher_seed)
            if not os.path.exists(record):  # first, so that no averaged outputs ever lie there without it
                atomic_files.write_json(record, {"seeds": self.seeds})
            write_ensemble_outputs([self.teacher_outputs_dir("single", s) for s in self.seeds], target,
                                   self._missing_outputs(target))
        result = self.ensure_student(config)
        return {task: result for task in self.tasks}

    def _missing_outputs(self, directory: str) -> list[str]:
        return missing_outputs(directory, self.tasks)

    def _refuse_other_flags(self, run_dir: str, current: BamConfig, what: str, ignored=frozenset()) -> None:
        """What a run dir already holds is reused only if it was trained with `current`'s flags: else the results
        would record flags their models never trained with (a finished (method, seed) is checked by plan();
        this covers the teachers and students that other methods reuse)."""
        layout = RunLayout(run_dir)
        if not os.path.exists(layout.config_path):
            return
        recorded = {k: v for k, v in atomic_files.read_json(layout.config_path).items() if k not in ignored}
        if os.path.exists(layout.task_defs_record):  # what BamPipeline recorded of the user's own tasks
            recorded[USER_TASKS_KEY] = atomic_files.read_json(layout.task_defs_record).get("tasks", [])
        # A run folder records the tasks it trains (born_again_single: one per folder).
        details = changed_settings(recorded, {**{k: v for k, v in current.to_dict().items() if k not in ignored},
                                              **self.user_task_definitions(current.tasks.split(","))})
        if details:
            raise ExperimentError(f"{run_dir} holds {what} trained with other flags ({details}); use another "
                                  "--experiment_dir and --results_file for other settings")

    def ensure_teachers(self, seed: int) -> None:
        self._refuse_other_flags(self.run_dir("single", seed), self.single_config(seed),
                                 f"seed {seed}'s teachers", ignored=STUDENT_ONLY_FLAGS)
        missing = [task for task in self.tasks if not is_trained(self.teacher_dir(seed, task))]
        if missing:
            # When a method distills from these teachers, their outputs are written right away, by the
            # same pipeline (the training data is encoded once).
            predict = bool(set(self.methods) & DISTILL_FROM_SINGLE)
            self.out(f"  single-task teachers, seed {seed}: training {', '.join(missing)}"
                     + (", then their outputs on the train splits" if predict else ""))
            self.backend.run_pipeline(self.single_config(seed, "teachers"), also_predict=predict)
            self._keep_in_store(seed)
        for task in self.tasks:
            if not os.path.exists(os.path.join(self.teacher_dir(seed, task), DEV_RESULTS)):
                self.backend.dev_results(self.single_config(seed), self.teacher_dir(seed, task))

    def ensure_teacher_outputs(self, seed: int) -> None:
        """Seed `seed`'s teacher outputs in its `single` run dir: from --teacher_outputs_store if it has them
        (the teachers themselves are then not needed), else written by the teachers (trained if need be)."""
        self._refuse_other_flags(self.run_dir("single", seed), self.single_config(seed),
                                 f"seed {seed}'s teachers", ignored=STUDENT_ONLY_FLAGS)
        outputs_dir = self.teacher_outputs_dir("single", seed)
        if self.store:
            fetched = self.store.fetch(seed, self._teacher_flags(seed), outputs_dir, self.tasks,
                                       lambda task: self.backend.train_fingerprint(self.single_config(seed), task))
            if fetched:
                self.out(f"  single-task teachers, seed {seed}: outputs of {', '.join(fetched)} "
                         f"from {self.store.seed_dir(seed)}")
        if self._missing_outputs(outputs_dir):
            self.ensure_teachers(seed)
            missing = self._missing_outputs(outputs_dir)
            if missing:
                self.out(f"  single-task teachers, seed {seed}: outputs on the train splits of {', '.join(missing)}")
                self.backend.run_pipeline(self.single_config(seed, "predict"))
        self._keep_in_store(seed)  # also outputs written before the store was given

    def _outputs_only_in_store(self, seed: int) -> bool:
        return bool(self.store and self._missing_outputs(self.teacher_outputs_dir("single", seed))
                    and not self._missing_outputs(self.store.seed_dir(seed)))

    def _teacher_flags(self, seed: int) -> dict:
        return {**{key: value for key, value in self.single_config(seed).to_dict().items()
                   if key not in STUDENT_ONLY_FLAGS}, **self.user_tasks}

    def _keep_in_store(self, seed: int) -> None:
        if self.store:
            try:
                kept = self.store.keep(seed, self._teacher_flags(seed), self.teacher_outputs_dir("single", seed),
                                       self.tasks)
            except OSError as error:  # the store saves later work; it may not stop this one (a read-only copy)
                self.out(f"warning: seed {seed}'s teacher outputs not kept in {self.store.seed_dir(seed)}: {error}")
                return
            if kept:
                self.out(f"  single-task teachers, seed {seed}: outputs of {', '.join(kept)} kept in "
                         f"{self.store.seed_dir(seed)}")

    def ensure_student(self, config: BamConfig) -> tuple[str, dict, dict]:
        self._refuse_other_flags(config.model_dir, config, "a student")
        student = RunLayout(config.model_dir).student_dir
        if not is_trained(student):
            try:
                self.backend.run_pipeline(dataclasses.replace(config, mode="student"))
            except TeacherOutputsError as error:  # its advice is bam-train's: say what it means in a grid
                raise ExperimentError(
                    f"{error}\n(in a grid, a student's teacher outputs are copied from its seed's single run "
                    "folder or the --teacher_outputs_store: for other data, use another --experiment_dir, "
                    "--results_file and --teacher_outputs_store)") from None
        if not os.path.exists(os.path.join(student, DEV_RESULTS)):
            self.backend.dev_results(config, student)
        return self._model_results(student)

    @staticmethod
    def _model_results(model_dir: str) -> tuple[str, dict, dict]:
        dev = atomic_files.read_json(os.path.join(model_dir, DEV_RESULTS))
        summary_path = os.path.join(model_dir, TRAINING_SUMMARY)
        summary = atomic_files.read_json(summary_path) if os.path.exists(summary_path) else {}
        return model_dir, dev, summary

    def _copy_teacher_outputs(self, source_dir: str, run_dir: str, tasks: list[str]) -> None:
        copy_outputs(source_dir, RunLayout(run_dir).teacher_outputs_dir, tasks)
