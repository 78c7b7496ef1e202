"""The BAM pipeline, stage by stage, over one --model_dir (laid out as bam_tf.run_layout describes).

A finished stage is skipped and a stage in progress resumes from its latest checkpoint, so re-running
the same command continues an interrupted run; the run refuses a model_dir written with other flags.
"""

import contextlib
import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bam_tf import atomic_files, metrics
from bam_tf.backbone import load_backbone
from bam_tf.config import (FLAGS_FREE_TO_CHANGE, STUDENT_ONLY_FLAGS, VALUES_BEFORE_THE_FLAG_EXISTED, BamConfig,
                           changed_flag_names, describe_flag_changes)
from bam_tf.dataset_multiples import describe_reference, epoch_multiples, epoch_sizes
from bam_tf.distribution import (choose_jit_compile, choose_precision, create_strategy, device_description,
                                 is_chief)
from bam_tf.evaluation import evaluate_split, predict_head
from bam_tf.glue_reader import TaskData, read_split
from bam_tf.run_data import read_run_split
from bam_tf.task import Task
from bam_tf.input_pipeline import TaskExamples
from bam_tf.length_bucketing import bucket_by_length, bucketing_note
from bam_tf.run_lock import LOCK_FILE, exclusive_run_dir
from bam_tf.run_layout import DEV_RESULTS, STAGE_OUTPUTS, TRAINING_SUMMARY, RunLayout
from bam_tf.task_defs import check_data_files, record_changes, run_record
from bam_tf.task_loss_weights import resolve_task_loss_weights
from bam_tf.task_set import task_set_of
from bam_tf.model import MultiTaskBert
from bam_tf.stage import compiled_stage_model
from bam_tf.task_sampler import ExampleStream, example_stream, num_train_steps
from bam_tf.teacher_outputs import (TeacherOutputs, align_teacher_outputs, load_teacher_outputs,
                                    save_teacher_outputs)
from bam_tf.text_encoding import EncodedExamples, TextEncoder, encode_task_data
from bam_tf.trained_model import is_trained_model_dir, load_trained_model, save_trained_model
from bam_tf.trainer import TrainingOptions, train
from bam_tf.user_errors import InputError, MissingInputError

@dataclasses.dataclass(frozen=True)
class TrainingInputs:
    """What one training stage trains on: its tasks' examples and the whole sampled stream of batches."""

    tasks: list[Task]
    examples: list[TaskExamples]
    stream: ExampleStream
    sizes: list[int]  # training examples per task
    multiples: list[int]  # dataset multiple per task (1 each when an epoch is the plain sum)
    epochs: float
    epoch_examples: int  # Σ size × multiple: the examples one epoch counts

    def budget(self) -> str:
        """The log's line on how long the stage trains and why: steps, epochs, and each task's size × multiple."""
        steps, batch_size = self.stream.num_steps, self.stream.batch_size
        names = [task.name for task in self.tasks]
        full = num_train_steps([self.epoch_examples], self.epochs, batch_size)
        per_task = " + ".join(f"{n} {s}×{m}" for n, s, m in zip(names, self.sizes, self.multiples))
        origin = (f"; multiples as the original's ({describe_reference(names, self.sizes)})"
                  if max(self.multiples) > 1 else "")
        epochs = (f"{self.epochs:g} epoch{'' if self.epochs == 1 else 's'} of {self.epoch_examples} examples "
                  f"({per_task}){origin}")
        if steps == full:
            return f"{steps} steps of {batch_size} = {epochs}"
        return f"{steps} steps of {batch_size}, capped by --max_train_steps ({full} would be {epochs})"


class BamPipeline:
    def __init__(self, config: BamConfig, strategy: tf.distribute.Strategy | None = None, verbose: bool = True):
        self.config = config
        self.task_set = task_set_of(config.task_defs)  # GLUE's tasks and the user's own
        self.tasks = self.task_set.parse_list(config.tasks)
        for task in self.tasks:
            if task.is_user_task:
                check_data_files(task)  # now, not when a later stage first reads them
        untrainable = [t.name for t in self.tasks if not t.trainable]
        if untrainable:
            raise InputError(f"--tasks: {untrainable} are evaluation-only sets (scored by another task's head)")
        # Checked now, so a misnamed task fails before anything is loaded.
        self.task_loss_weights = resolve_task_loss_weights(config.task_loss_weights, self.task_set, self.tasks)
        self.strategy = strategy or create_strategy(config.strategy, config.tpu, config.cpu_replicas)
        self.precision, self.precision_reason = choose_precision(config.precision, self.strategy)
        self.jit_compile, self.jit_compile_reason = choose_jit_compile(config.jit_compile, self.strategy)
        self.verbose = verbose
        # Every worker of a multi-worker run trains every stage (collectives need all of them), but only
        # the chief writes the run's files.
        self.model_dir = config.model_dir if is_chief() else os.path.join(
            config.model_dir, "workers", str(json.loads(os.environ["TF_CONFIG"])["task"]["index"]))
        self.layout = RunLayout(self.model_dir)
        self._encoder: TextEncoder | None = None
        self._splits: dict[tuple[str, str], tuple[TaskData, EncodedExamples]] = {}

    # ---- locations -------------------------------------------------------------------------------
    def teacher_dir(self, task: Task) -> str:
        return self.layout.teacher_dir(task.name)

    def teacher_outputs_path(self, task: Task) -> str:
        return self.layout.teacher_outputs_path(task.name)

    # ---- stages ----------------------------------------------------------------------------------
    def run(self) -> dict | None:
        with exclusive_run_dir(self.model_dir):
            return self._run()

    def _run(self) -> dict | None:
        self._check_model_dir()
        self._use_precision()
        logging.info("strategy %s with %d replica(s), precision %s (%s), XLA %s (%s)", type(self.strategy).__name__,
                     self.strategy.num_replicas_in_sync, self.precision, self.precision_reason,
                     "on" if self.jit_compile else "off", self.jit_compile_reason)
        mode = self.config.mode
        self._load_data_first(mode)
        records = [self.layout.config_path, self.layout.flags_path]
        new_run = not os.path.exists(self.layout.config_path)
        there_before = _paths_below(self.model_dir) if new_run else set()
        atomic_files.write_json(self.layout.config_path, self.config.to_dict())
        atomic_files.write_text(self.layout.flags_path, self.config.to_rerun_flagfile_text())
        if any(task.is_user_task for task in self.tasks):
            records.append(self.layout.task_defs_record)
            atomic_files.write_json(self.layout.task_defs_record, run_record(self.tasks, self.config.task_defs))
        try:
            return self._run_stages(mode)
        except BaseException:
            # A new run stopped before anything but these records was written (e.g. --mode=predict with no
            # teachers): the records it made go too, and exclusive_run_dir leaves no folder it made behind.
            with contextlib.suppress(OSError):  # the folder moved meanwhile: leaving it is always safe
                made = {os.path.basename(path) for path in records} - there_before
                if new_run and _paths_below(self.model_dir) <= there_before | made:
                    for name in made:
                        with contextlib.suppress(FileNotFoundError):
                            os.remove(os.path.join(self.model_dir, name))
            raise

    def _run_stages(self, mode: str) -> dict | None:
        if mode in ("all", "teachers") and self.config.distill:
            self.train_teachers()
        if mode in ("all", "predict") and self.config.distill:
            self.write_teacher_outputs()
        if mode in ("all", "student"):
            self.train_student()
        if mode in ("all", "evaluate"):
            # After training in this same run the student's dev scores are fresh; --mode=evaluate rescores
            # the saved model.
            return self.evaluate(rescore=mode == "evaluate")
        return None

    def train_teachers(self) -> None:
        c = self.config
        for task in self.tasks:  # every kept teacher checked before any trains (hours, on a CPU)
            if is_trained_model_dir(self.teacher_dir(task)):
                self._check_kept_teacher(self.teacher_dir(task))
        for task in self.tasks:
            if is_trained_model_dir(self.teacher_dir(task)):
                logging.info("teacher for %s already trained, keeping %s", task.name, self.teacher_dir(task))
                continue
            inputs = self.training_inputs([task], {task.name: None}, c.teacher_batch_size, c.teacher_epochs,
                                          use_multiples=False)
            self._train_and_save(inputs, c.teacher_learning_rate, self.teacher_dir(task), f"teacher {task.name}")

    def _check_kept_teacher(self, teacher_dir: str) -> None:
        """A teacher folder copied into this run (as the refusal of a changed run suggests for student flags)
        must come from the flags its teachers use: else flags.txt would record flags it never trained with.
        Teachers saved before their summary recorded flags are kept unchecked."""
        path = os.path.join(teacher_dir, TRAINING_SUMMARY)
        try:
            recorded = (atomic_files.read_json(path) if os.path.exists(path) else {}).get("flags") or {}
        except (OSError, ValueError, AttributeError) as error:
            raise InputError(f"{path}: cannot read the teacher's training summary ({error})") from None
        current = self.config.to_dict()
        ignored = FLAGS_FREE_TO_CHANGE | STUDENT_ONLY_FLAGS | {"tasks", "task_defs"}  # a teacher has its own task
        changed = changed_flag_names(recorded, current, ignored)
        if changed:
            details = describe_flag_changes(recorded, current, changed)
            raise InputError(f"{teacher_dir} was trained with other flags ({details}); delete it to train it with "
                             "these, or run with the flags it was trained with")

    def write_teacher_outputs(self, teacher_dir: str | None = None, output_dir: str | None = None) -> None:
        """Each task's teacher outputs on its training split, kept where they exist already.

        The teacher of a task is this run's teachers/<TASK>, or the one trained model in `teacher_dir`
        for every task (e.g. a multi-task model as Multi→Multi teacher); the files go to `output_dir`
        (default: this run's teacher_outputs/).
        """
        self._use_precision()
        loaded = {}  # model folder -> model; one at a time
        for task in self.tasks:
            path = (os.path.join(output_dir, f"{task.name}.npz") if output_dir
                    else self.teacher_outputs_path(task))
            if os.path.exists(path):
                logging.info("teacher outputs for %s exist, keeping %s", task.name, path)
                continue
            source = teacher_dir or self.teacher_dir(task)
            if not is_trained_model_dir(source):
                raise MissingInputError(f"{source}: no trained teacher for {task.name} (run --mode=teachers first)")
            if teacher_dir is None:
                self._check_kept_teacher(source)  # a copied-in teacher, predicting without --mode=teachers
            if source not in loaded:
                model, encoder = load_trained_model(source, self.task_set)
                self._check_same_encoding(encoder, source)
                loaded = {source: model}
            model = loaded[source]
            data, encoded = self.split(task, "train")
            outputs = predict_head(model, encoded, task.name, self.config.eval_batch_size,
                                   self.config.length_multiple or 1)
            save_teacher_outputs(path, TeacherOutputs(task.name, np.asarray(data.ids), outputs, data.fingerprint()))
            logging.info("wrote %d teacher outputs for %s to %s", len(outputs), task.name, path)

    def train_student(self) -> None:
        c = self.config
        if is_trained_model_dir(self.layout.student_dir):
            logging.info("student already trained, keeping %s", self.layout.student_dir)
            return
        self._train_and_save(self.student_inputs(), c.learning_rate, self.layout.student_dir, "student")

    def student_inputs(self) -> TrainingInputs:
        """The student's examples (with teacher outputs when distilling) and its whole training stream."""
        c = self.config
        teacher_outputs = {task.name: None for task in self.tasks}
        if c.distill:  # load and check every teacher before spending time on training
            for task in self.tasks:
                path = self.teacher_outputs_path(task)
                data, _ = self.split(task, "train")
                teacher_outputs[task.name] = align_teacher_outputs(load_teacher_outputs(path), data, path)
        return self.training_inputs(self.tasks, teacher_outputs, c.train_batch_size, c.num_train_epochs,
                                    use_multiples=c.dataset_multiples)

    def training_inputs(self, tasks: list[Task], teacher_outputs: dict[str, np.ndarray | None], batch_size: int,
                        epochs: float, use_multiples: bool) -> TrainingInputs:
        c = self.config
        examples = []
        for task in tasks:
            data, encoded = self.split(task, "train")
            examples.append(TaskExamples(encoded, task.training_targets(data.labels), task.num_outputs,
                                         teacher_outputs[task.name]))
        sizes = [len(e.encoded) for e in examples]
        names = [task.name for task in tasks]
        multiples = epoch_multiples(names, sizes, c.task_weight_exponent, use_multiples)
        epoch = epoch_sizes(names, sizes, c.task_weight_exponent, use_multiples)
        steps = num_train_steps(epoch, epochs, batch_size, c.max_train_steps)
        stream = example_stream(sizes, c.task_weight_exponent, batch_size, steps, c.task_mixing, c.seed)
        stream = bucket_by_length(stream, [e.encoded.lengths for e in examples], c.length_bucketing_window, c.seed)
        return TrainingInputs(tasks, examples, stream, sizes, multiples, epochs, sum(epoch))

    def evaluate(self, rescore: bool = True) -> dict:
        student = self.layout.student_dir
        if not is_trained_model_dir(student):
            raise MissingInputError(f"{student}: no trained student (run --mode=student first)")
        saved = os.path.join(student, DEV_RESULTS)
        results = {"student": self.dev_results(student) if rescore or not os.path.exists(saved)
                   else atomic_files.read_json(saved)}
        teachers = {}
        for task in self.tasks:
            teacher = self.teacher_dir(task)
            if not is_trained_model_dir(teacher):
                continue
            path = os.path.join(teacher, DEV_RESULTS)
            # A teacher saved without its scores (by a version that wrote them after the model) is scored now,
            # not left out of the table and the average.
            teachers.update((atomic_files.read_json(path) if os.path.exists(path) else self.dev_results(teacher))
                            ["tasks"])
        if teachers:
            results["teachers"] = self._with_average(teachers)
        atomic_files.write_json(self.layout.dev_results_path, results)
        print(metrics.format_results_table(results["student"]["tasks"], title="Student (dev)",
                                             user_tasks=self.task_set.user_tasks))
        if teachers:
            print(metrics.format_results_table(teachers, title="Single-task teachers (dev)",
                                                 user_tasks=self.task_set.user_tasks))
        return results

    # ---- pieces ----------------------------------------------------------------------------------
    def _train_and_save(self, inputs: TrainingInputs, learning_rate: float, out_dir: str, description: str):
        c = self.config
        tasks, examples, stream, sizes, multiples = (inputs.tasks, inputs.examples, inputs.stream, inputs.sizes,
                                                     inputs.multiples)
        names = [task.name for task in tasks]
        steps = stream.num_steps
        logging.info("%s: %s", description, inputs.budget())
        replicas = self.strategy.num_replicas_in_sync
        replica_batch = stream.batch_size // replicas
        # (a batch that does not split over the replicas is refused by the trainer, with its message)
        if (stream.num_steps and replica_batch and stream.batch_size % replicas == 0
                and not isinstance(self.strategy, tf.distribute.TPUStrategy)):
            logging.info("%s: %s", description, bucketing_note(stream, [e.encoded.lengths for e in examples],
                                                               c.length_bucketing_window, c.seed, replica_batch,
                                                               c.length_group_size))
        weights = self.stage_loss_weights(tasks)
        if weights:
            logging.info("%s: task loss weights (--task_loss_weights) %s", description,
                         ", ".join(f"{name} ×{weight:g}" for name, weight in weights.items()))
        elif len(tasks) == 1 and description == "student" and self.task_loss_weights[tasks[0].name] != 1.0:
            logging.info("student: --task_loss_weights ignored: a stage of one task has nothing to weigh it against")
        keras.utils.set_random_seed(c.seed)
        with self.strategy.scope():
            model = compiled_stage_model(c, tasks, learning_rate=learning_rate, total_steps=steps,
                                         precision=self.precision, task_loss_weights=weights)
        stage = os.path.basename(out_dir) if description == "student" else f"teacher_{tasks[0].name}"
        checkpoint_dir = self.layout.checkpoint_dir(stage)
        summary = train(model, examples, stream, self.strategy, TrainingOptions(
            description=description, checkpoint_dir=checkpoint_dir, checkpoint_every=c.checkpoint_every,
            keep_checkpoints=c.keep_checkpoints, summary_dir=self.layout.tensorboard_dir(stage),
            log_every=c.log_every, eval_every=c.eval_every, evaluate=lambda: self._dev_scores(model),
            run_flags_text=c.to_flagfile_text(), verbose=self.verbose, jit_compile=self.jit_compile,
            static_length=c.max_seq_length if isinstance(self.strategy, tf.distribute.TPUStrategy) else None,
            group_size=c.length_group_size, length_multiple=c.length_multiple,
            context={"precision": self.precision, "device": device_description(self.strategy)}))
        passes = {n: round(summary.examples_per_task[n] / max(s, 1), 2) for n, s in zip(names, sizes)}
        resumed = summary.resumed_from_step
        ran = (f"{summary.steps} steps" if not resumed else
               f"steps {resumed + 1}–{summary.steps} of {summary.steps} (resumed)" if resumed < summary.steps else
               f"no step left of {summary.steps} (resumed at the end)")
        logging.info("%s: %s in %.0f s, examples per task %s, passes over each training set %s", description,
                     ran, summary.seconds, summary.examples_per_task, passes)
        # With the model, in one rename: a trained model folder always holds its summary and dev scores.
        save_trained_model(out_dir, model, self.encoder, c.backbone, records={
            TRAINING_SUMMARY: {**dataclasses.asdict(summary), "passes_per_task": passes,
                               "train_examples": dict(zip(names, sizes)),
                               "dataset_multiples": dict(zip(names, multiples)),
                               "precision": self.precision, "device": device_description(self.strategy),
                               "strategy": type(self.strategy).__name__, "replicas": replicas,
                               "flags": c.to_dict()},  # what trained it: a copied teacher is checked (teachers)
            DEV_RESULTS: self._with_average(summary.final_dev_scores)})
        best_dir = os.path.join(checkpoint_dir, "best")
        if os.path.isdir(best_dir):  # per-task best checkpoints outlive the rolling ones
            shutil.rmtree(os.path.join(out_dir, "best"), ignore_errors=True)
            os.replace(best_dir, os.path.join(out_dir, "best"))
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # checkpoints/ itself, once no stage is in progress
            os.rmdir(os.path.dirname(checkpoint_dir))

    def stage_loss_weights(self, tasks: list[Task]) -> dict[str, float] | None:
        """The task loss weights of a stage training `tasks`: None when all are 1 or the stage has one task
        (nothing to balance)."""
        weights = {task.name: self.task_loss_weights[task.name] for task in tasks}
        return weights if len(tasks) > 1 and any(w != 1.0 for w in weights.values()) else None

    def _dev_scores(self, model: MultiTaskBert) -> dict[str, dict[str, float]]:
        scores = {}
        for task in model.tasks:
            for eval_task in self.task_set.dev_tasks(task):
                data, encoded = self.split(eval_task, "dev")
                scores[eval_task.name] = evaluate_split(model, data, encoded, self.config.eval_batch_size,
                                                        self.config.length_multiple or 1)
        return scores

    def dev_results(self, model_dir: str) -> dict:
        """Dev scores of the trained model in `model_dir` on this run's data, saved as its dev_results.json."""
        self._use_precision()
        model, encoder = load_trained_model(model_dir, self.task_set)
        self._check_same_encoding(encoder, model_dir)
        results = self._with_average(self._dev_scores(model))
        atomic_files.write_json(os.path.join(model_dir, DEV_RESULTS), results)
        return results

    def _use_precision(self) -> None:
        """Compute in this run's precision whoever calls: a caller that cleared the Keras session (the
        experiment runner does, between stages) has reset the policy to float32, and the same flags must give
        the same teacher outputs and scores through bam-train and bam-experiments."""
        keras.mixed_precision.set_global_policy(self.precision)

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            tokenizer = load_backbone(self.config.backbone, load_weights=False).tokenizer
            self._encoder = TextEncoder(tokenizer, self.config.max_seq_length)
        return self._encoder

    def split(self, task: Task, split: str) -> tuple[TaskData, EncodedExamples]:
        """A split as this run uses it (capped, and order-augmented for training), encoded once per run."""
        key = (task.name, split)
        if key not in self._splits:
            data = read_run_split(self.config, task, split)
            self._splits[key] = (data, encode_task_data(data, self.encoder))
        return self._splits[key]

    def _load_data_first(self, mode: str) -> None:
        """Read every split this run will need now, so bad data fails before any training."""
        needs_train = mode in ("all", "teachers", "predict", "student")
        for task in self.tasks:
            if needs_train:
                self.split(task, "train")
            for eval_task in self.task_set.dev_tasks(task):
                self.split(eval_task, "dev")
            if task.is_user_task and "test" in task.splits:
                # Read (not kept): a bad test file would otherwise surface in glue_submission, after training.
                read_split(self.config.glue_dir, task, "test")

    def _with_average(self, scores: dict[str, dict[str, float]]) -> dict:
        try:
            average = metrics.glue_average(scores, self.task_set.user_tasks)
        except ValueError:
            average = None
        return {"tasks": scores, "glue_average": average,
                "tasks_in_average": [name for name in scores if name != "AX"]}

    def _check_same_encoding(self, encoder: TextEncoder, model_dir: str) -> None:
        if encoder.max_seq_length != self.config.max_seq_length:
            raise InputError(f"{model_dir} was trained with max_seq_length={encoder.max_seq_length}, "
                             f"this run uses {self.config.max_seq_length}")

    def _check_model_dir(self) -> None:
        config_path = self.layout.config_path
        if os.path.exists(config_path):
            previous = BamConfig.from_json_file(config_path).to_dict()
            current = self.config.to_dict()
            changed = changed_flag_names(previous, current, FLAGS_FREE_TO_CHANGE)
            has_outputs = any(os.path.exists(self.layout.path(name)) for name in STAGE_OUTPUTS)
            record = self.layout.task_defs_record  # user tasks: what they were defined as, not only the file's path
            task_changes = record_changes(
                atomic_files.read_json(record) if os.path.exists(record) else None,
                run_record(self.tasks, self.config.task_defs) if self.config.task_defs else None)
            if (changed or task_changes) and has_outputs:
                recorded_keys = atomic_files.read_json(config_path).keys()
                # A flags.txt written before a flag existed lacks it, and parses to the new default.
                hint = {k: f" (recorded before --{k} existed: add --{'no' if previous[k] is False else ''}{k}"
                           f"{'' if isinstance(previous[k], bool) else '=' + str(previous[k])})"
                        for k in changed if k in VALUES_BEFORE_THE_FLAG_EXISTED and k not in recorded_keys}
                details = ", ".join(filter(None, [describe_flag_changes(previous, current, changed, hint),
                                                  *(f"--task_defs {change}" for change in task_changes)]))
                same_tasks = (f" --task_defs={self.layout.task_defs_record} (the definitions it was made with)"
                              if task_changes else "")
                # Only the student differs: its teachers need not be trained again.
                reuse = (f"; to train only a new student, first copy {self.layout.path('teachers')} and "
                         f"{self.layout.teacher_outputs_dir} into the new --model_dir (stages there are kept)"
                         if set(changed) <= STUDENT_ONLY_FLAGS and not task_changes
                         and os.path.isdir(self.layout.teacher_outputs_dir) else "")
                raise InputError(f"{self.config.model_dir} holds a run with other flags ({details}); use a new "
                                 f"--model_dir{reuse}, or --flagfile={self.layout.flags_path} "
                                 f"--model_dir={self.config.model_dir}{same_tasks} to continue that run")


def _paths_below(directory: str) -> set[str]:
    """Every file and folder below `directory`, relative to it (the lock file left out)."""
    paths = set()
    for root, folders, files in os.walk(directory):
        paths.update(os.path.relpath(os.path.join(root, name), directory) for name in folders + files)
    return paths - {LOCK_FILE}
