"""The multi-task student (and each single-task teacher): one BERT backbone, one head per task.

Every batch carries a `task_id` per example. All heads run on all examples and each head's loss is
masked to its own task's examples; that serves both mixing modes (mixed batches, as the original BAM
code, and single-task batches) with one compiled step.

The loss is, as in the original, the *sum* of the masked per-example losses over the batch
(`loss_reduction="sum"`); with gradients clipped to a global norm of 1.0 nearly every step is then
clipped, so each update has a fixed length and Adam sees normalised gradients. `"mean"` divides by the
global batch size instead (clipping then acts only on large gradients). `task_loss_weights`
(--task_loss_weights) multiplies a task's summed loss in the gradient only. Either way each replica adds up
its slice of the global batch and the optimizer sums gradients across replicas, so a distributed step
equals a single-device step on the whole batch.

λ, the learning rate and the resume point follow `batches_done`, which advances once per batch: under
float16 loss scaling the optimizer skips updates with non-finite gradients without advancing its own
`iterations`, and schedules counted in updates would drift.

Keras-native saving: `model.save("m.keras")` and `keras.saving.load_model("m.keras")` round-trip (import
bam_tf.model first, so Keras knows the class). The config holds the backbone's keras config, the task
names, user tasks (--task_defs) by their definitions, and the distillation and head settings.
"""

import dataclasses
from collections.abc import Mapping

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from bam_tf import task_defs, teacher_annealing
from bam_tf.glue_tasks import TASKS
from bam_tf.task import Task, task_slug
from bam_tf.tracing import traced_once_per_owner
from bam_tf.user_errors import InputError


LOSS_REDUCTIONS = ("sum", "mean")
# The backbone's inputs, as every batch (training, inference, export) carries them.
_FEATURE_SPECS = {"token_ids": tf.TensorSpec([None, None], tf.int32),
                  "segment_ids": tf.TensorSpec([None, None], tf.int32),
                  "padding_mask": tf.TensorSpec([None, None], tf.bool)}


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
    total_steps: int = 1
    teacher_annealing: bool = True
    distill_weight: float = 0.5  # weight of the teacher when annealing is off: λ = 1 − distill_weight
    temperature: float = 1.0  # divides the teacher's logits only, as in the original (no T² factor)


def head_layer_name(task_name: str) -> str:
    return "head_" + task_slug(task_name)


def multitask_loss(outputs: dict, batch: dict, tasks: list[Task], gold_weight, temperature: float):
    """Per-task (loss sum, example count) over this batch's examples of each task.

    outputs[task.name]: [batch, num_outputs] logits or scores; batch holds task_id, label (class index or
    score, as float), teacher ([batch, max_outputs] logits or score in column 0) and has_teacher.
    """
    loss_sums, counts = [], []
    for task_id, task in enumerate(tasks):
        mask = ops.cast(ops.equal(batch["task_id"], task_id), "float32")
        prediction = outputs[task.name]
        teacher = batch["teacher"][:, :task.num_outputs]
        per_example = task.per_example_loss(prediction, batch["label"], teacher, batch["has_teacher"], gold_weight,
                                            temperature)
        loss_sums.append(ops.sum(per_example * mask))
        counts.append(ops.sum(mask))
    return ops.stack(loss_sums), ops.stack(counts)


@keras.saving.register_keras_serializable(package="bam_tf")
class MultiTaskBert(keras.Model):
    def __init__(self, backbone, tasks: list[Task], distillation: DistillationSettings = DistillationSettings(),
                 head_dropout: float = 0.1, loss_reduction: str = "sum", task_loss_weights: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"unknown loss_reduction {loss_reduction!r}; choose one of {LOSS_REDUCTIONS}")
        names = [task.name for task in tasks]
        unknown = sorted(set(task_loss_weights or {}) - set(names))
        if unknown:
            raise InputError(f"task_loss_weights: {unknown} are not among the model's tasks {names}")
        # None: every task's loss counts once (the original); else one weight per task, in task order.
        weights = [float((task_loss_weights or {}).get(name, 1.0)) for name in names]
        self.task_loss_weights = None if all(w == 1.0 for w in weights) else dict(zip(names, weights))
        self.backbone = backbone
        self.tasks = list(tasks)
        self.distillation = distillation
        self.loss_reduction = loss_reduction
        # Heads and their dropout compute in float32 under mixed precision: stored teacher logits and
        # regression scores are not rounded to bfloat16's 8 bits of mantissa.
        self.head_dropout = keras.layers.Dropout(head_dropout, name="head_dropout", dtype="float32")
        # glorot_uniform: the tf.layers.dense default the original's task heads were built with.
        self.heads = {task.name: keras.layers.Dense(task.num_outputs, kernel_initializer="glorot_uniform",
                                                    name=head_layer_name(task.name), dtype="float32")
                      for task in self.tasks}
        self.gold_weight = self.add_weight(shape=(), initializer="zeros", trainable=False, name="gold_weight",
                                           dtype="float32", aggregation="only_first_replica")
        self.batches_done = self.add_weight(shape=(), initializer="zeros", trainable=False, name="batches_done",
                                            dtype="int64", aggregation="only_first_replica")
        self.xla_group_steps = False
        self._inference_function = None

    def call(self, features, training=False):
        missing = [k for k in _FEATURE_SPECS if k not in features] if isinstance(features, Mapping) else None
        if missing is None or missing:
            got = type(features).__name__ + (f" without {', '.join(missing)}" if missing else "")
            raise InputError("MultiTaskBert takes the encoded features {token_ids, segment_ids, padding_mask}, as a "
                             "TextEncoder makes them from texts; for predictions from texts use "
                             f"bam_tf.predictor.Predictor (got {got})")
        pooled = self.backbone({k: features[k] for k in _FEATURE_SPECS},
                               training=training)["pooled_output"]
        pooled = self.head_dropout(ops.cast(pooled, "float32"), training=training)
        return {name: head(pooled) for name, head in self.heads.items()}

    def current_gold_weight(self):
        d = self.distillation
        return teacher_annealing.gold_weight(self.batches_done, d.total_steps, d.teacher_annealing,
                                             d.distill_weight)

    def train_step(self, batch):
        """One batch; returns this replica's share of the statistics (sum them across replicas).

        `batch` is a dict of features and targets, or a tuple of length groups that together form this
        replica's slice of one batch (input_pipeline.training_dataset): the groups' summed losses and
        gradients are added up before the one update, so λ, the learning rate and `batches_done` advance
        once per batch and the update is the unsplit batch's. `loss` in the statistics is the mean
        per-example loss over the global batch, whatever the reduction the gradient uses, so logs read
        the same under both.
        """
        groups = (batch,) if isinstance(batch, dict) else tuple(batch)
        gold_weight = self.current_gold_weight()
        self.gold_weight.assign(gold_weight)
        replica_batch_size = ops.sum(ops.stack([ops.shape(group["task_id"])[0] for group in groups]))
        global_batch_size = ops.cast(replica_batch_size, "float32") * float(
            tf.distribute.get_strategy().num_replicas_in_sync)
        loss_divisor = ops.ones((), "float32") if self.loss_reduction == "sum" else global_batch_size
        gradients, loss_sums, counts = None, 0.0, 0.0
        for group in groups:
            group_gradients, group_loss_sums, group_counts = self._group_step(group, gold_weight, loss_divisor)
            gradients = group_gradients if gradients is None else [
                _sum_gradients(a, b) for a, b in zip(gradients, group_gradients)]
            loss_sums, counts = loss_sums + group_loss_sums, counts + group_counts
        self.optimizer.apply(gradients, self.trainable_variables)
        self.batches_done.assign_add(1)
        return {"loss": ops.sum(loss_sums) / global_batch_size, "task_loss_sums": loss_sums, "task_counts": counts}

    @property
    def xla_group_steps(self) -> bool:
        """Whether each length group's forward and backward pass is XLA-compiled (one program per group
        shape; the optimizer update and its cross-replica sum stay outside)."""
        return self._xla_group_steps

    @xla_group_steps.setter
    def xla_group_steps(self, value: bool) -> None:
        self._xla_group_steps = bool(value)
        self._group_step_function = None

    def _group_step(self, group, gold_weight, loss_divisor):
        # One traced function for every group (its length is a dynamic dimension), however many
        # groups a batch has: the step's graph does not grow with them.
        if self._group_step_function is None:
            self._group_step_function = tf.function(self._group_gradients, reduce_retracing=True,
                                                    jit_compile=True if self._xla_group_steps else None)
        return self._group_step_function(group, gold_weight, loss_divisor)

    def _group_gradients(self, group, gold_weight, loss_divisor):
        """(gradients of this group's loss, its per-task loss sums, its per-task example counts)."""
        with tf.GradientTape() as tape:
            outputs = self(group, training=True)
            loss_sums, counts = multitask_loss(outputs, group, self.tasks, gold_weight, self.distillation.temperature)
            scaled_loss = self.optimizer.scale_loss(ops.sum(self.weighted_loss_sums(loss_sums)) / loss_divisor)
        return tape.gradient(scaled_loss, self.trainable_variables), loss_sums, counts

    def weighted_loss_sums(self, loss_sums):
        """Per-task loss sums as the update weighs them (--task_loss_weights); unchanged without weights."""
        if self.task_loss_weights is None:
            return loss_sums
        return loss_sums * ops.convert_to_tensor([self.task_loss_weights[task.name] for task in self.tasks],
                                                 "float32")

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable,
                "dtype": keras.dtype_policies.serialize(self.dtype_policy),
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "tasks": [task.name for task in self.tasks],
                "user_tasks": [task_defs.definition_of(task) for task in self.tasks if task.is_user_task],
                "distillation": dataclasses.asdict(self.distillation),
                "head_dropout": self.head_dropout.rate, "loss_reduction": self.loss_reduction,
                "task_loss_weights": self.task_loss_weights}

    @classmethod
    def from_config(cls, config: dict) -> "MultiTaskBert":
        """The model get_config describes, built (its weights random until Keras loads the saved ones)."""
        _check_config_keys(config)
        tasks = _tasks_from_config(config["tasks"], config["user_tasks"])
        distillation = _distillation_from_config(config["distillation"])
        if not isinstance(config["backbone"], dict):
            raise InputError(f"{_CONFIG}: backbone: expected a serialized keras-hub backbone, "
                             f"found {config['backbone']!r}")
        backbone = keras.saving.deserialize_keras_object(config["backbone"])
        weights = config.get("task_loss_weights")
        if weights is not None and not (isinstance(weights, dict) and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights.values())):
            raise InputError(f"{_CONFIG}: task_loss_weights: expected null or a mapping of task name to a positive "
                             f"weight, found {weights!r}")
        settings = {key: config[key] for key in ("head_dropout", "loss_reduction", *_OPTIONAL_KEYS, *_LAYER_KEYS)
                    if key in config}
        model = cls(backbone, tasks, distillation, **settings)
        build_model(model)  # Keras loads the saved weights next, into variables that must exist by then
        return model

    def inference_outputs(self, features):
        """All heads' outputs on a batch of features of any size and length: traced once per model."""
        if self._inference_function is None:
            self._inference_function = tf.function(self._inference, input_signature=[_FEATURE_SPECS])
        return self._inference_function({name: tf.cast(features[name], spec.dtype)
                                         for name, spec in _FEATURE_SPECS.items()})

    def _inference(self, features):
        return self(features, training=False)

    def inference_traces(self) -> int:
        """How often inference_outputs was traced (1 once used: any batch shape reuses the trace)."""
        return self._inference_function.experimental_get_tracing_count() if self._inference_function else 0


def build_model(model: MultiTaskBert) -> None:
    """Create every variable by running a tiny batch through the model."""
    # Token id 0 exists in every vocabulary (101/102, BERT-uncased's [CLS]/[SEP], do not in small ones).
    features = {"token_ids": np.zeros((1, 2), np.int32), "segment_ids": np.zeros((1, 2), np.int32),
                "padding_mask": np.ones((1, 2), bool)}
    model(features)


# ---- the keras config (get_config / from_config) -------------------------------------------------------
_CONFIG = "MultiTaskBert config"  # how errors name a saved model's config
_LAYER_KEYS = ("name", "trainable", "dtype")  # keras.layers.Layer's own, optional
_MODEL_KEYS = ("backbone", "tasks", "user_tasks", "distillation", "head_dropout", "loss_reduction")
_OPTIONAL_KEYS = ("task_loss_weights",)  # absent from configs saved before it existed


def _check_config_keys(config) -> None:
    # A misspelt or missing key would otherwise fall back to a constructor default without a word.
    if not isinstance(config, dict):
        raise InputError(f"{_CONFIG}: expected a mapping, found {type(config).__name__}")
    unknown = sorted(set(config) - {*_LAYER_KEYS, *_MODEL_KEYS, *_OPTIONAL_KEYS})
    missing = [key for key in _MODEL_KEYS if key not in config]
    if unknown or missing:
        problems = ([f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []) + (
            [f"missing key(s) {', '.join(map(repr, missing))}"] if missing else [])
        raise InputError(f"{_CONFIG}: {'; '.join(problems)}; valid keys: {', '.join(_MODEL_KEYS + _OPTIONAL_KEYS + _LAYER_KEYS)}")


def _tasks_from_config(names, definitions) -> list[Task]:
    """GLUE tasks by name, user tasks built from their definitions -- not registered: loading a model
    changes nothing else in the process."""
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise InputError(f"{_CONFIG}: tasks: expected a non-empty list of task names, found {names!r}")
    if len(set(names)) != len(names):
        raise InputError(f"{_CONFIG}: tasks: a task is listed twice in {names}")
    if not isinstance(definitions, list):
        raise InputError(f"{_CONFIG}: user_tasks: expected a list of task definitions, found {definitions!r}")
    user_tasks = {task.name: task for task in task_defs.tasks_from_definitions(
        {"tasks": definitions}, source=f"{_CONFIG}: user_tasks", check_files=False)} if definitions else {}
    tasks = []
    for i, name in enumerate(names):
        task = user_tasks.get(name) or TASKS.get(name)
        if task is None:
            raise InputError(f"{_CONFIG}: tasks[{i}]: {name!r} is neither a GLUE task ({', '.join(TASKS)}) nor "
                             "defined in user_tasks")
        tasks.append(task)
    unused = sorted(set(user_tasks) - set(names))
    if unused:
        raise InputError(f"{_CONFIG}: user_tasks defines {', '.join(unused)}, which tasks does not list")
    return tasks


def _distillation_from_config(value) -> DistillationSettings:
    fields = [field.name for field in dataclasses.fields(DistillationSettings)]
    if not isinstance(value, dict) or sorted(value) != sorted(fields):
        raise InputError(f"{_CONFIG}: distillation: expected a mapping with exactly the keys {', '.join(fields)}, "
                         f"found {value!r}")
    return DistillationSettings(**value)


@tf.autograph.experimental.do_not_convert  # plain Python on tensors; nothing for autograph to rewrite
def _sum_gradients(a, b):
    """a + b, keeping sparse embedding gradients sparse (their rows are added when the update densifies them)."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, tf.IndexedSlices) and isinstance(b, tf.IndexedSlices):
        return tf.IndexedSlices(tf.concat([a.values, b.values], 0), tf.concat([a.indices, b.indices], 0),
                                a.dense_shape)
    return tf.convert_to_tensor(a) + tf.convert_to_tensor(b)


# Each model traces these once (inference) or once per group size (group step): model_test checks.
traced_once_per_owner("MultiTaskBert._inference")
traced_once_per_owner("MultiTaskBert._group_gradients")
