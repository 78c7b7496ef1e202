"""The behavioural check of distillation: a student trained with λ held at 0 (pure teacher targets) ends
closer to its teacher's predictions than a student trained on gold labels only.

The teacher deliberately disagrees with the (random) gold labels in a learnable way: it says the class is
the parity of the first content token. Only a student that listens to the teacher can pick that up.
"""

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from bam_tf.evaluation import predict_head
from bam_tf.task_set import glue_task
from bam_tf.input_pipeline import TaskExamples
from bam_tf.model import DistillationSettings, MultiTaskBert
from bam_tf.optimizer import create_optimizer
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples
from bam_tf.trained_model import build_model
from bam_tf.trainer import TrainingOptions, train

RTE = glue_task("RTE")
VOCAB, CLS, SEP = 100, 1, 2
NUM_EXAMPLES, BATCH_SIZE, NUM_STEPS = 64, 16, 60
FIRST_TOKENS = np.arange(10, 18)  # parity of the first content token is the teacher's class
TEACHER_LOGIT = 3.0  # softmax([3, -3]) ≈ [0.9975, 0.0025]: a confident teacher


def _synthetic_task(seed=0):
    rng = np.random.default_rng(seed)
    rows, segments, lengths = [], [], []
    first = rng.choice(FIRST_TOKENS, size=NUM_EXAMPLES)
    for i in range(NUM_EXAMPLES):
        rest = rng.integers(20, VOCAB, size=rng.integers(1, 9))  # 1..8 filler tokens: lengths 4..11
        row = np.concatenate([[CLS, first[i]], rest, [SEP]]).astype(np.int32)
        rows.append(row)
        segments.append(np.zeros(len(row), np.int32))
        lengths.append(len(row))
    encoded = EncodedExamples(np.concatenate(rows), np.concatenate(segments), np.asarray(lengths, np.int32))
    teacher_class = first % 2
    teacher_logits = np.where(np.eye(2, dtype=bool)[teacher_class], TEACHER_LOGIT, -TEACHER_LOGIT)
    gold = rng.integers(0, 2, size=NUM_EXAMPLES)
    return encoded, gold.astype(np.float32), teacher_logits.astype(np.float32), teacher_class


def _train_student(encoded, gold, teacher_logits, distillation):
    stream = example_stream([NUM_EXAMPLES], 0.75, BATCH_SIZE, NUM_STEPS, "mixed", seed=0)
    examples = [TaskExamples(encoded, gold, RTE.num_outputs, teacher_logits)]
    keras.utils.set_random_seed(0)  # same initial weights and dropout for both students
    backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=32,
                                             intermediate_dim=64, max_sequence_length=64)
    model = MultiTaskBert(backbone, [RTE], distillation)
    build_model(model)
    model.compile(optimizer=create_optimizer(peak_learning_rate=3e-3, total_steps=NUM_STEPS, num_layers=2,
                                             layerwise_lr_decay=1.0, weight_decay=0.0))
    summary = train(model, examples, stream, tf.distribute.get_strategy(), TrainingOptions(verbose=False))
    assert summary.steps == NUM_STEPS
    assert summary.examples_per_task == {"RTE": BATCH_SIZE * NUM_STEPS}
    return model, summary


def _kl_and_agreement(model, encoded, teacher_logits):
    logits = predict_head(model, encoded, "RTE", batch_size=32).astype(np.float64)
    log_q = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    t = teacher_logits.astype(np.float64)
    log_p = t - np.log(np.exp(t).sum(axis=1, keepdims=True))
    kl = float(np.mean(np.sum(np.exp(log_p) * (log_p - log_q), axis=1)))  # KL(teacher ‖ student)
    agreement = float(np.mean(logits.argmax(axis=1) == teacher_logits.argmax(axis=1)))
    return kl, agreement


def test_student_with_lambda_zero_ends_closer_to_its_teacher_than_a_gold_only_student():
    encoded, gold, teacher_logits, teacher_class = _synthetic_task()
    # the teacher really disagrees with gold: about half the labels differ
    assert 0.3 < np.mean(gold != teacher_class) < 0.7

    distilled, summary_a = _train_student(encoded, gold, teacher_logits,
                                          DistillationSettings(total_steps=NUM_STEPS, teacher_annealing=False,
                                                               distill_weight=1.0))
    assert summary_a.final_gold_weight == 0.0  # λ held at 0 throughout
    gold_only, _ = _train_student(encoded, gold, None, DistillationSettings(total_steps=NUM_STEPS))

    kl_a, agree_a = _kl_and_agreement(distilled, encoded, teacher_logits)
    kl_b, agree_b = _kl_and_agreement(gold_only, encoded, teacher_logits)
    print(f"distilled: KL {kl_a:.3f} agreement {agree_a:.3f}; gold only: KL {kl_b:.3f} agreement {agree_b:.3f}")
    assert agree_a >= 0.9, agree_a
    assert agree_a - agree_b >= 0.25, (agree_a, agree_b)
    assert kl_a < 0.5 * kl_b, (kl_a, kl_b)
