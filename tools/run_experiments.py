"""python tools/run_experiments.py --flagfile=configs/experiments/<name>.flags [--dry_run]

Runs the grid of (method, seed) needed to test the BAM paper's claim — a Single→Multi student with
teacher annealing beats its single-task teachers and plain multi-task training — and appends each
finished run's dev scores to a JSON-lines results file (`tools/report.py` turns that into tables, tests
and plots). The flagfile holds ordinary bam_tf flags (shared by every method: no per-method tuning) plus:

  --methods=single,multi,bam,...   which methods (see METHODS below)
  --seeds=0,1,2                    one run per method and seed (weights, dropout and data order follow it)
  --experiment_dir=DIR             every run's --model_dir lives under it (DIR/<method>/seed<k>/)
  --results_file=FILE.jsonl        one line per finished (method, seed, task)
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
left by a kill is reported and dropped.

A results line: method, seed, task, metrics (the task's GLUE dev metrics), score (their mean, the GLUE task
score), wall_time_s (seconds this invocation spent on the (method, seed), dependencies included; a run that
`resumed` counts only its remaining part), training_steps and train_examples of the model's run, model_dir,
flags (that run's full BamConfig), git_commit / git_dirty of bam_tf, finished_at.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bam_tf import json_io, metrics  # noqa: E402  (no TensorFlow: a --dry_run stays fast)
from bam_tf.config import BamConfig  # noqa: E402
from bam_tf.glue_tasks import parse_task_list  # noqa: E402

METHODS = ("single", "multi", "bam", "bam_no_anneal", "multi_to_multi", "born_again_single", "bam_ensemble")
# Per-run settings the runner owns; an experiment flagfile may not set them.
RUNNER_OWNED_FLAGS = {"model_dir": "each run's model_dir is <experiment_dir>/<method>/seed<k>",
                      "mode": "the runner runs the stages each method needs", "seed": "use --seeds",
                      "distill": "set per method", "teacher_annealing": "set per method",
                      "distill_weight": "set per method (bam_no_anneal: 0.5)"}
# Flags that do not change a run's result: a results line with other values of these still counts.
FREE_FLAGS = {"mode", "model_dir", "log_every", "eval_batch_size", "checkpoint_every", "keep_checkpoints",
              "eval_every", "glue_dir", "tfds_data_dir"}
NO_ANNEAL_DISTILL_WEIGHT = 0.5
DISTILL_FROM_SINGLE = {"bam", "bam_no_anneal", "born_again_single", "bam_ensemble"}  # need single's outputs
MODEL_CONFIG = "model_config.json"  # bam_tf.trained_model.MODEL_CONFIG (that module imports TensorFlow)
REQUIRED_KEYS = ("method", "seed", "task", "metrics", "score")


class ExperimentError(ValueError):
    pass


# ---- the results file ----------------------------------------------------------------------------
def read_results(path: str) -> tuple[list[dict], str | None]:
    """Every complete line of a results file, and a warning when its last line was cut off.

    A line counts only once its newline is on disk. Text after the last newline is what a kill in the
    middle of a write leaves: it is ignored and reported. Any other unreadable line is an error.
    """
    if not os.path.exists(path):
        return [], None
    with open(path, "rb") as f:
        data = f.read()
    *lines, tail = data.split(b"\n")
    warning = None
    if tail.strip():
        warning = (f"{path}: ignoring a truncated last line ({len(tail)} bytes without a newline, "
                   f"probably from an interrupted run): {tail[:80].decode('utf-8', 'replace')!r}…")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ExperimentError(f"{path}:{number}: not a JSON line ({error})") from None
        missing = [key for key in REQUIRED_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise ExperimentError(f"{path}:{number}: results line lacks {missing}")
        records.append(record)
    return records, warning


def append_results(path: str, records: list[dict]) -> str | None:
    """Append `records` as JSON lines with ONE write, then fsync. Drops a truncated tail first."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        dropped = _drop_truncated_tail(fd, path)
        written = os.write(fd, payload)
        while written < len(payload):  # a regular file takes it all at once; be safe anyway
            written += os.write(fd, payload[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    return dropped


def _drop_truncated_tail(fd: int, path: str) -> str | None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    end = size
    while end > 0:  # find the last newline, scanning back in blocks
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    return f"{path}: dropped a truncated last line ({size - keep} bytes) before appending"


def latest_records(records: Iterable[dict]) -> dict[tuple[str, int, str], dict]:
    """The last line per (method, seed, task)."""
    return {(r["method"], int(r["seed"]), r["task"]): r for r in records}


# ---- what a run needs ----------------------------------------------------------------------------
def eval_task_names(task_names: Iterable[str]) -> list[str]:
    """Dev sets scored for these training tasks (MNLI is also scored on dev-mismatched)."""
    names = []
    for name in task_names:
        names += [name] + (["MNLI-mm"] if name == "MNLI" else [])
    return names


def is_trained(model_dir: str) -> bool:
    return os.path.exists(os.path.join(model_dir, MODEL_CONFIG))


def git_commit() -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = git("status", "--porcelain", "--untracked-files=no")
        return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


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


class PipelineBackend:
    """Runs BamPipeline in this process. Everything here imports TensorFlow, lazily."""

    def __init__(self, verbose: bool = True):
        self.verbose = verbose
        self._sizes: dict[tuple, int] = {}

    def run_pipeline(self, config: BamConfig, also_predict: bool = False) -> None:
        """BamPipeline(config).run(); `also_predict` then writes the teachers' outputs with the same
        pipeline (its encoded data is reused) — for mode=teachers when a distillation method follows."""
        import keras

        from bam_tf.pipeline import BamPipeline
        keras.backend.clear_session()
        try:
            pipeline = BamPipeline(config, verbose=self.verbose)
            pipeline.run()
            if also_predict:
                keras.backend.clear_session()
                pipeline.write_teacher_outputs()
        finally:
            keras.backend.clear_session()

    def _pipeline_and_model(self, config: BamConfig, model_dir: str):
        import keras

        from bam_tf.pipeline import BamPipeline
        from bam_tf.trained_model import load_trained_model
        keras.backend.clear_session()
        pipeline = BamPipeline(config, verbose=False)
        keras.mixed_precision.set_global_policy(pipeline.precision)
        model, encoder = load_trained_model(model_dir)
        if encoder.max_seq_length != config.max_seq_length:
            raise ExperimentError(f"{model_dir} was trained with max_seq_length={encoder.max_seq_length}, "
                                  f"this run uses {config.max_seq_length}")
        return pipeline, model

    def predict_outputs(self, config: BamConfig, model_dir: str, out_dir: str) -> None:
        """The trained model in `model_dir` as teacher: its outputs on each of `config`'s train splits."""
        import keras
        import numpy as np

        from bam_tf.evaluation import predict_head
        from bam_tf.teacher_outputs import TeacherOutputs, save_teacher_outputs
        pipeline, model = self._pipeline_and_model(config, model_dir)
        for task in pipeline.tasks:
            path = os.path.join(out_dir, f"{task.name}.npz")
            if os.path.exists(path):
                continue
            data, encoded = pipeline.split(task, "train")
            outputs = predict_head(model, encoded, task.name, config.eval_batch_size)
            save_teacher_outputs(path, TeacherOutputs(task.name, np.asarray(data.ids), outputs, data.fingerprint()))
        keras.backend.clear_session()

    def score_model(self, config: BamConfig, model_dir: str) -> None:
        """Dev scores of a saved model whose run died before writing its dev_results.json."""
        import keras

        from bam_tf.evaluation import evaluate_split
        from bam_tf.glue_tasks import get_task
        pipeline, model = self._pipeline_and_model(config, model_dir)
        scores = {}
        for name in eval_task_names(task.name for task in model.tasks):
            data, encoded = pipeline.split(get_task(name), "dev")
            scores[name] = evaluate_split(model, data, encoded, config.eval_batch_size)
        json_io.write_json(os.path.join(model_dir, "dev_results.json"), {"tasks": scores})
        keras.backend.clear_session()

    def train_sizes(self, config: BamConfig) -> dict[str, int] | None:
        """Training examples per task as the run uses them (cap, swapped pairs); None for tfds data."""
        if config.data_source != "tsv":
            return None
        from bam_tf.glue_reader import read_split
        sizes = {}
        for task in parse_task_list(config.tasks):
            key = (os.path.abspath(config.glue_dir), task.name, config.max_train_examples, config.swap_pair_order)
            if key not in self._sizes:
                data = read_split(config.glue_dir, task, "train", config.max_train_examples or None)
                self._sizes[key] = len(data) * (2 if task.symmetric and config.swap_pair_order else 1)
            sizes[task.name] = self._sizes[key]
        return sizes


class Experiment:
    def __init__(self, base: BamConfig, methods: list[str], seeds: list[int], experiment_dir: str,
                 results_file: str, backend=None, out: Callable[[str], None] | None = None):
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ExperimentError(f"--methods: unknown {unknown or 'none given'}; choose from {', '.join(METHODS)}")
        if len(set(methods)) != len(methods) or len(set(seeds)) != len(seeds) or not seeds:
            raise ExperimentError("--methods and --seeds must be non-empty and without repeats")
        if not experiment_dir or not results_file:
            raise ExperimentError("--experiment_dir and --results_file are required")
        self.base = base
        self.methods = [m for m in METHODS if m in methods]
        self.seeds = list(seeds)
        self.experiment_dir = experiment_dir
        self.results_file = results_file
        self.backend = backend or PipelineBackend()
        self.tasks = [task.name for task in parse_task_list(base.tasks)]
        self.out = out or (lambda text: print(text, flush=True))
        self._provenance: dict | None = None
        for key in self.keys():  # every run's flags must be valid before anything starts
            for config in self.configs(key).values():
                try:
                    config.validate()
                except ValueError as error:
                    raise ExperimentError(f"{key}: {error}") from None

    # ---- layout and per-run flags ---------------------------------------------------------------
    def run_dir(self, method: str, seed: int) -> str:
        return os.path.join(self.experiment_dir, method, f"seed{seed}")

    def _config(self, method: str, seed: int, **changes) -> BamConfig:
        values = dict(model_dir=self.run_dir(method, seed), seed=seed, mode="student", distill=True,
                      teacher_annealing=True, distill_weight=_default("distill_weight"))
        values.update(changes)
        return dataclasses.replace(self.base, **values)

    def single_config(self, seed: int, mode: str = "teachers") -> BamConfig:
        return self._config("single", seed, mode=mode)

    def configs(self, key: RunKey) -> dict[str, BamConfig]:
        """Training task → the flags of the run that trained its model (what its results line records)."""
        method, seed = key.method, key.seed
        if method == "single":
            config = self.single_config(seed)
        elif method == "multi":  # distillation settings back at their defaults, as --nodistill demands
            config = self._config(method, seed, distill=False, temperature=_default("temperature"))
        elif method == "bam_no_anneal":
            config = self._config(method, seed, teacher_annealing=False, distill_weight=NO_ANNEAL_DISTILL_WEIGHT)
        elif method in ("bam", "multi_to_multi", "bam_ensemble"):
            config = self._config(method, seed)
        elif method == "born_again_single":
            b = self.base
            return {task: self._config(method, seed, tasks=task,
                                       model_dir=os.path.join(self.run_dir(method, seed), task),
                                       learning_rate=b.teacher_learning_rate, train_batch_size=b.teacher_batch_size,
                                       num_train_epochs=b.teacher_epochs)
                    for task in self.tasks}
        else:
            raise ExperimentError(f"unknown method {method}")
        return {task: config for task in self.tasks}

    def keys(self) -> list[RunKey]:
        """Seed by seed (a whole seed is done early), bam_ensemble last (it needs every seed's teachers)."""
        keys = [RunKey(m, s) for s in self.seeds for m in self.methods if m != "bam_ensemble"]
        if "bam_ensemble" in self.methods:
            keys += [RunKey("bam_ensemble", s) for s in self.seeds]
        return keys

    # ---- plan ------------------------------------------------------------------------------------
    def expected_tasks(self, key: RunKey) -> list[str]:
        return eval_task_names(self.tasks)

    def plan(self) -> tuple[list[PlanItem], str | None]:
        records, warning = read_results(self.results_file)
        latest = latest_records(records)
        items = []
        for key in self.keys():
            configs = self.configs(key)
            present = []
            for task in self.expected_tasks(key):
                record = latest.get((key.method, key.seed, task))
                if record is None:
                    continue
                self._check_same_flags(key, task, record, configs[task.replace("MNLI-mm", "MNLI")])
                present.append(task)
            expected = self.expected_tasks(key)
            if len(present) == len(expected):
                items.append(PlanItem(key, True, "done"))
                continue
            details = []
            if present:
                details.append(f"{len(present)} of {len(expected)} task lines recorded")
            dirs = {config.model_dir for config in configs.values()}
            if any(os.path.exists(os.path.join(d, "config.json")) for d in dirs):
                details.append(f"continues in {self.run_dir(key.method, key.seed)}")
            items.append(PlanItem(key, False, "to do" + (f" ({'; '.join(details)})" if details else "")))
        return items, warning

    def _check_same_flags(self, key: RunKey, task: str, record: dict, config: BamConfig) -> None:
        recorded = record.get("flags") or {}
        current = config.to_dict()
        changed = sorted(k for k in current if k in recorded and k not in FREE_FLAGS and recorded[k] != current[k])
        if changed:
            details = ", ".join(f"--{k}: {recorded[k]!r} → {current[k]!r}" for k in changed)
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
        self.out(f"  {done} done, {len(items) - done} to do")
        return items

    def provenance(self) -> dict:
        if self._provenance is None:
            self._provenance = git_commit()
        return self._provenance

    # ---- running ---------------------------------------------------------------------------------
    def run(self) -> list[PlanItem]:
        os.makedirs(self.experiment_dir, exist_ok=True)
        with open(os.path.join(self.experiment_dir, ".run_experiments.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExperimentError(f"{self.experiment_dir}: another run_experiments.py is running on it") from None
            items = self.print_plan()
            todo = [item for item in items if not item.done]
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
        resumed = any(os.path.exists(os.path.join(c.model_dir, "config.json")) for c in configs.values())
        trained = self.execute(key)  # training task → (model dir, dev results, training summary)
        wall_time = time.time() - started
        previous = latest_records(read_results(self.results_file)[0])
        lines = []
        for task in self.expected_tasks(key):
            train_task = task.replace("MNLI-mm", "MNLI")
            model_dir, dev, summary = trained[train_task]
            if (key.method, key.seed, task) in previous:
                continue  # an earlier, interrupted write already recorded it
            if task not in dev.get("tasks", {}):
                raise ExperimentError(f"{model_dir}/dev_results.json has no {task} scores")
            task_metrics = dev["tasks"][task]
            config = configs[train_task]
            sizes = self.backend.train_sizes(config)
            if sizes and key.method == "single":  # each teacher trained on its own task only
                sizes = {train_task: sizes[train_task]}
            lines.append({
                "method": key.method, "seed": key.seed, "task": task, "metrics": task_metrics,
                "score": metrics.task_score(task_metrics), "wall_time_s": round(wall_time, 1), "resumed": resumed,
                "training_steps": summary.get("steps"), "train_examples": sizes,
                "model_dir": model_dir, "flags": config.to_dict(), **self.provenance(),
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
            return {task: self._model_results(self.teacher_dir(seed, task), self.single_config(seed))
                    for task in self.tasks}
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
                self.backend.predict_outputs(config, os.path.join(multi.model_dir, "student"),
                                             self.teacher_outputs_dir(method, seed))
        elif method == "bam_ensemble":
            for teacher_seed in self.seeds:
                self.ensure_teacher_outputs(teacher_seed)
            self._write_ensemble_outputs(self.teacher_outputs_dir(method, seed))
        result = self.ensure_student(config)
        return {task: result for task in self.tasks}

    def teacher_dir(self, seed: int, task: str) -> str:
        return os.path.join(self.run_dir("single", seed), "teachers", task)

    def teacher_outputs_dir(self, method: str, seed: int) -> str:
        return os.path.join(self.run_dir(method, seed), "teacher_outputs")

    def _missing_outputs(self, directory: str, tasks: list[str] | None = None) -> list[str]:
        return [t for t in (tasks or self.tasks) if not os.path.exists(os.path.join(directory, f"{t}.npz"))]

    def ensure_teachers(self, seed: int) -> None:
        missing = [task for task in self.tasks if not is_trained(self.teacher_dir(seed, task))]
        if missing:
            # When a method distills from these teachers, their outputs are written right away, by the
            # same pipeline (the training data is encoded once).
            predict = bool(set(self.methods) & DISTILL_FROM_SINGLE)
            self.out(f"  single-task teachers, seed {seed}: training {', '.join(missing)}"
                     + (", then their outputs on the train splits" if predict else ""))
            self.backend.run_pipeline(self.single_config(seed, "teachers"), also_predict=predict)
        for task in self.tasks:
            if not os.path.exists(os.path.join(self.teacher_dir(seed, task), "dev_results.json")):
                self.backend.score_model(self.single_config(seed), self.teacher_dir(seed, task))

    def ensure_teacher_outputs(self, seed: int) -> None:
        self.ensure_teachers(seed)
        missing = self._missing_outputs(self.teacher_outputs_dir("single", seed))
        if missing:
            self.out(f"  single-task teachers, seed {seed}: outputs on the train splits of {', '.join(missing)}")
            self.backend.run_pipeline(self.single_config(seed, "predict"))

    def ensure_student(self, config: BamConfig) -> tuple[str, dict, dict]:
        student = os.path.join(config.model_dir, "student")
        if not is_trained(student):
            self.backend.run_pipeline(dataclasses.replace(config, mode="student"))
        if not os.path.exists(os.path.join(student, "dev_results.json")):
            self.backend.score_model(config, student)
        return self._model_results(student, config)

    @staticmethod
    def _model_results(model_dir: str, config: BamConfig) -> tuple[str, dict, dict]:
        dev = json_io.read_json(os.path.join(model_dir, "dev_results.json"))
        summary_path = os.path.join(model_dir, "training_summary.json")
        summary = json_io.read_json(summary_path) if os.path.exists(summary_path) else {}
        return model_dir, dev, summary

    def _copy_teacher_outputs(self, source_dir: str, run_dir: str, tasks: list[str]) -> None:
        target_dir = os.path.join(run_dir, "teacher_outputs")
        os.makedirs(target_dir, exist_ok=True)
        for task in tasks:
            target = os.path.join(target_dir, f"{task}.npz")
            if not os.path.exists(target):
                _atomic_copy(os.path.join(source_dir, f"{task}.npz"), target)

    def _write_ensemble_outputs(self, target_dir: str) -> None:
        """Mean over seeds of the single teachers' outputs (logits; scores for STS-B), per task."""
        import numpy as np

        from bam_tf.teacher_outputs import TeacherOutputs, load_teacher_outputs, save_teacher_outputs
        for task in self._missing_outputs(target_dir):
            paths = [os.path.join(self.teacher_outputs_dir("single", s), f"{task}.npz") for s in self.seeds]
            loaded = [load_teacher_outputs(path) for path in paths]
            first = loaded[0]
            ids = first.example_ids.tolist()
            aligned = []
            for path, outputs in zip(paths, loaded):
                if outputs.data_fingerprint != first.data_fingerprint or outputs.task_name != first.task_name:
                    raise ExperimentError(f"{path}: computed on other {task} data than {paths[0]}; cannot average")
                if outputs.outputs.shape != first.outputs.shape or sorted(outputs.example_ids.tolist()) != sorted(ids):
                    raise ExperimentError(f"{path}: example ids or shape differ from {paths[0]}; cannot average")
                row = {example_id: i for i, example_id in enumerate(outputs.example_ids.tolist())}
                aligned.append(outputs.outputs[[row[example_id] for example_id in ids]].astype(np.float64))
            mean = np.mean(aligned, axis=0).astype(np.float32)
            save_teacher_outputs(os.path.join(target_dir, f"{task}.npz"),
                                 TeacherOutputs(task, first.example_ids, mean, first.data_fingerprint))


def _default(name: str):
    return next(f.default for f in dataclasses.fields(BamConfig) if f.name == name)


def _atomic_copy(source: str, target: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(target)), suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---- command line --------------------------------------------------------------------------------
def define_runner_flags(flag_values=None) -> None:
    from absl import flags

    from bam_tf.config import define_flags
    flag_values = flag_values or flags.FLAGS
    define_flags(flag_values)
    flags.DEFINE_list("methods", "single,multi,bam", f"Methods to run, from: {', '.join(METHODS)}.",
                      flag_values=flag_values)
    flags.DEFINE_list("seeds", "0,1,2", "Seeds; every method runs once per seed.", flag_values=flag_values)
    flags.DEFINE_string("experiment_dir", "", "Folder holding every run's model_dir (required).",
                        flag_values=flag_values)
    flags.DEFINE_string("results_file", "", "JSON-lines results file, appended to (required).",
                        flag_values=flag_values)
    flags.DEFINE_bool("dry_run", False, "Print the plan (done / to do) and stop.", flag_values=flag_values)


def experiment_from_flags(flag_values, backend=None) -> Experiment:
    owned = [name for name in RUNNER_OWNED_FLAGS if flag_values[name].present]
    if owned:
        raise ExperimentError("set by the runner, not in an experiment flagfile: "
                              + "; ".join(f"--{name} ({RUNNER_OWNED_FLAGS[name]})" for name in owned))
    values = {f.name: flag_values[f.name].value for f in dataclasses.fields(BamConfig)}
    values["glue_dir"] = values["glue_dir"] or os.environ.get("GLUE_DIR", "")
    values["model_dir"] = flag_values.experiment_dir
    try:
        seeds = [int(seed) for seed in flag_values.seeds]
    except ValueError:
        raise ExperimentError(f"--seeds must be integers, got {flag_values.seeds}") from None
    base = BamConfig.from_dict(values)
    return Experiment(base, [m.strip() for m in flag_values.methods], seeds, flag_values.experiment_dir,
                      flag_values.results_file, backend=backend)


def main(argv) -> int:
    from absl import app, flags, logging
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        experiment = experiment_from_flags(flags.FLAGS)
    except ValueError as error:
        raise app.UsageError(str(error))
    if flags.FLAGS.dry_run:
        try:
            experiment.print_plan()
        except ExperimentError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    logging.set_verbosity(logging.INFO)
    from bam_tf.user_errors import exit_status_of
    return exit_status_of(experiment.run)


if __name__ == "__main__":
    from absl import app
    define_runner_flags()
    app.run(main)
