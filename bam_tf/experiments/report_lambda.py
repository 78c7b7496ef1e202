"""λ (the weight of the gold label) over the bam student's training, as bam_tf.teacher_annealing computes
it, and the total steps it runs over."""

from __future__ import annotations

import os

import numpy as np

from bam_tf import atomic_files
from bam_tf.config import VALUES_BEFORE_THE_FLAG_EXISTED
from bam_tf.dataset_multiples import epoch_sizes
from bam_tf.experiments.report_results import Results
from bam_tf.run_layout import TRAINING_SUMMARY
from bam_tf.task_sampler import num_train_steps

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the figure's λ comes from bam_tf.teacher_annealing (Keras)


def bam_total_steps(results: Results) -> tuple[int, str] | None:
    """Total steps of the bam student: its training_summary.json if the run folder is here, else the steps the
    results file recorded, else (older results files) the schedule recomputed from the flags."""
    for task in results.tasks:
        for record in results.records("bam", task):
            path = os.path.join(record.get("model_dir", ""), TRAINING_SUMMARY)
            if os.path.exists(path):
                return int(atomic_files.read_json(path)["steps"]), path
    for task in results.tasks:
        for record in results.records("bam", task):
            if isinstance(record.get("training_steps"), int):
                return record["training_steps"], "training_steps in the results file (run folder not found)"
    for task in results.tasks:
        for record in results.records("bam", task):
            flags, sizes = record.get("flags") or {}, record.get("train_examples")
            if sizes and flags.get("num_train_epochs") and flags.get("train_batch_size"):
                epoch = epoch_sizes(list(sizes), list(sizes.values()), flags.get("task_weight_exponent", 0.75),
                                    flags.get("dataset_multiples", VALUES_BEFORE_THE_FLAG_EXISTED["dataset_multiples"]))
                steps = num_train_steps(epoch, flags["num_train_epochs"], flags["train_batch_size"],
                                        flags.get("max_train_steps") or 0)
                return steps, ("the schedule: ⌈epochs · Σ train examples × dataset multiple / batch size⌉ (run "
                               "folder not found, a results file from before training_steps were recorded)")
    return None


def annealed_lambda(total_steps: int) -> np.ndarray:
    """λ at every student step 0 … total_steps − 1, as training computes it (bam_tf.teacher_annealing)."""
    from keras import ops

    from bam_tf.teacher_annealing import annealed_gold_weight
    return ops.convert_to_numpy(annealed_gold_weight(np.arange(total_steps), total_steps))


def no_anneal_lambda(results: Results) -> float | None:
    """The fixed λ of the bam_no_anneal student (from its --distill_weight), as training computes it."""
    from keras import ops

    from bam_tf.teacher_annealing import gold_weight
    for task in results.tasks:
        for record in results.records("bam_no_anneal", task):
            weight = (record.get("flags") or {}).get("distill_weight")
            if weight is not None:
                return float(ops.convert_to_numpy(gold_weight(0, 1, teacher_annealing=False,
                                                              distill_weight=float(weight))))
    return None
