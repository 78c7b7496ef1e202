"""Training throughput of the BAM student step against a plain keras-hub classifier, in one process:

  (1) BAM student: `MultiTaskBert` over several GLUE tasks with teacher outputs attached, teacher
      annealing, mixed batches, length bucketing and per-batch padding, run through
      `bam_tf.trainer.train` as `BamPipeline` builds it (model, optimizer, stream, dataset) but with each
      batch padded whole, without length groups, so that (2) can train on the very same batches;
  (2) `keras_hub.models.BertTextClassifier` (same backbone, 2 classes, no preprocessor) trained with
      `model.fit` on the very same batches (same token ids and padding per batch; labels clipped to {0, 1});
  (3) the BAM student with every batch padded to max_seq_length 128 and no length bucketing;
  (4) teacher-prediction writing: `bam_tf.evaluation.predict_head` over every training example;
  (5) the student on the faithful grid's own stream (configs/experiments/cpu_mini_glue_faithful.flags:
      each task's first 8551 rows, mixed batches of 128, bucketed): (5a) each batch padded to its longest
      example as bam_tf trained before length groups, (5b) with length groups (the pipeline's default),
      (5c) length groups + XLA; the same batches in each, spread evenly over the stream, run twice, the
      second pass timed (the first traces, and for (5c) compiles);
  (6) the teachers' steps on the same data (one task per batch of 32, bucketed), timed the same way;
      (6c) the same + XLA (lengths rounded up to multiples of 16).

Every variant starts from a fresh model with the same seed, under the same precision policy and batch
size. Training variants run --warmup_steps + --steps steps and only the last --steps are timed (tracing
and first-step costs excluded); the clock reads are taken after each step's results are on the host.
(4) runs a warm-up pass on --warmup_steps batches' worth of examples first, then times one full pass
over every task's training examples.

The same run measures the machine's matmul peak (bf16 and float32; a chain of n×n matmuls inside a
tf.function, best of several repeats, 2·n³ FLOPs each) and the FLOP/s the student step achieves,
from the analytic BERT-encoder count in `encoder_forward_flops` summed over the padded batch shapes of
the timed steps (training ≈ 3 × forward).

Results are printed and written as Markdown to --output (atomically). --smoke runs a tiny random
backbone on two small tasks in well under a minute, to check the tool itself works. The command line is
`python tools/benchmark.py` (its --help lists every setting of BenchmarkSettings).

Targets: (1)/(2) ≥ 0.95 (the custom multi-task step costs no more than plain Keras `fit`),
(1)/(3) ≥ 2.5 (per-batch padding + length bucketing pay off on GLUE's length distribution),
(5b)/(5a) ≥ 1.7 in examples/s (length groups) and (5b)/(6) ≥ 0.85 in real tokens/s (a student token
costs about what a teacher token costs).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow itself is imported when a benchmark starts

# What tools/benchmark.py needs; the rest lives in the modules named after what they hold.
from bam_tf.benchmark.runner import run_benchmark  # noqa: E402
from bam_tf.benchmark.settings import DEFAULTS, SMOKE, BenchmarkSettings  # noqa: E402

__all__ = ["DEFAULTS", "SMOKE", "BenchmarkSettings", "run_benchmark"]
