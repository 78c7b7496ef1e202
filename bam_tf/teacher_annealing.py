"""Teacher annealing: the training target of every BAM student example.

target = λ·gold + (1−λ)·teacher, where λ (`gold_weight`) rises linearly with the batch count,
λ = step / total_steps (the original's `percent_done`: 0 at the first batch, (T−1)/T at the last), so
the student starts by imitating its teachers and ends on the gold labels (Clark et al. 2019, §3).
Classification mixes a one-hot gold vector with softmax(teacher_logits / T) and trains with
cross-entropy against the student's plain log-softmax (the temperature touches the teacher only, and
there is no T² factor, as in the original); regression mixes the two values and trains with squared error.

Everything here works on TF tensors and NumPy arrays alike, and is computed in float32 whatever the
model's compute dtype: soft targets near 0 or 1 lose too much in bfloat16.
"""

from keras import ops


def annealed_gold_weight(step, total_steps):
    """λ for the batch numbered `step` (0-based) of `total_steps`: step / total_steps."""
    total = ops.cast(ops.maximum(total_steps, 1), "float32")
    return ops.clip(ops.cast(step, "float32") / total, 0.0, 1.0)


def gold_weight(step, total_steps, teacher_annealing: bool, distill_weight: float):
    """λ under either schedule: annealed, or fixed at 1 − distill_weight."""
    if teacher_annealing:
        return annealed_gold_weight(step, total_steps)
    return ops.convert_to_tensor(1.0 - distill_weight, "float32")


def classification_targets(gold_labels, teacher_logits, has_teacher, gold_weight, num_classes,
                           temperature=1.0):
    """Soft targets [batch, num_classes]; examples without a teacher get their one-hot gold label."""
    gold = ops.one_hot(ops.cast(gold_labels, "int32"), num_classes, dtype="float32")
    teacher = ops.softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    weight = _per_example_gold_weight(gold_weight, has_teacher)[:, None]
    return weight * gold + (1.0 - weight) * teacher


def regression_targets(gold_values, teacher_values, has_teacher, gold_weight):
    """Mixed regression targets [batch]; examples without a teacher keep their gold value."""
    weight = _per_example_gold_weight(gold_weight, has_teacher)
    return weight * ops.cast(gold_values, "float32") + (1.0 - weight) * ops.cast(teacher_values, "float32")


def soft_cross_entropy(targets, logits):
    """Per-example −Σ target·log softmax(logits)."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    return -ops.sum(targets * log_probs, axis=-1)


def squared_error(targets, predictions):
    """Per-example (prediction − target)²; `predictions` may carry a trailing axis of 1."""
    predictions = ops.reshape(ops.cast(predictions, "float32"), ops.shape(targets))
    return ops.square(predictions - targets)


def _per_example_gold_weight(gold_weight, has_teacher):
    has_teacher = ops.cast(has_teacher, "float32")
    return has_teacher * gold_weight + (1.0 - has_teacher)
