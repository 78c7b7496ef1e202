"""Training throughput of the BAM student step against a plain keras-hub classifier, in one process:

  (1) BAM student: `MultiTaskBert` over several GLUE tasks with teacher outputs attached, teacher
      annealing, mixed batches, length bucketing and per-batch padding, run through
      `bam_tf.trainer.train` exactly as `BamPipeline` builds it (model, optimizer, stream, dataset);
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

from __future__ import annotations

import dataclasses
import datetime
import gc
import os
import shlex
import sys
import time

import numpy as np

from bam_tf import atomic_files

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow itself is imported when a benchmark starts

DEFAULT_TASKS = "CoLA,SST-2,MRPC,STS-B,RTE"
STATIC_LENGTH = 128
TARGET_VS_KERAS = 0.95  # (1)/(2)
TARGET_VS_STATIC = 2.5  # (1)/(3)
FEATURES = ("token_ids", "segment_ids", "padding_mask")

# Settings --smoke changes, unless given on the command line.
SMOKE = {"backbone": "random:layers=2,hidden=32", "tasks": "CoLA,MRPC", "steps": 3, "warmup_steps": 2,
         "examples_per_task": 48, "predict_batch_size": 32, "peak_matmul_size": 256, "peak_matmuls": 4,
         "peak_repeats": 3, "mixed_train_examples": 48, "mixed_batch_size": 32, "mixed_steps": 2}
DEFAULTS = {"backbone": "all-MiniLM-L6-v2", "tasks": DEFAULT_TASKS, "steps": 40, "warmup_steps": 5,
            "examples_per_task": 2000, "predict_batch_size": 256, "peak_matmul_size": 2048, "peak_matmuls": 10,
            "peak_repeats": 5, "mixed_train_examples": 8551, "mixed_batch_size": 128, "mixed_steps": 12}
TARGET_GROUPS = 1.7  # (5b)/(5a), examples/s
TARGET_STUDENT_VS_TEACHERS = 0.85  # (5b)/(6), real tokens/s


@dataclasses.dataclass
class BenchmarkSettings:
    """What to benchmark and how; one field per flag of tools/benchmark.py (its --help explains each)."""
    glue_dir: str = ""
    output: str = "results/benchmark.md"
    backbone: str = DEFAULTS["backbone"]
    tasks: str = DEFAULTS["tasks"]
    examples_per_task: int = DEFAULTS["examples_per_task"]
    steps: int = DEFAULTS["steps"]
    warmup_steps: int = DEFAULTS["warmup_steps"]
    batch_size: int = 32
    predict_batch_size: int = DEFAULTS["predict_batch_size"]
    precision: str | None = None  # None: what --precision=auto picks here
    jit_compile: bool = False
    length_bucketing_window: int = 32
    baseline_optimizer: str = "bam"  # or "keras_adamw"
    seed: int = 0
    rounds: int = 2
    peak_matmul_size: int = DEFAULTS["peak_matmul_size"]
    peak_matmuls: int = DEFAULTS["peak_matmuls"]
    peak_repeats: int = DEFAULTS["peak_repeats"]
    # the faithful config's student stream (configs/experiments/cpu_mini_glue_faithful.flags)
    mixed_train_examples: int = DEFAULTS["mixed_train_examples"]
    mixed_batch_size: int = DEFAULTS["mixed_batch_size"]
    mixed_steps: int = DEFAULTS["mixed_steps"]
    mixed_epochs: float = 4.0
    teacher_batch_size: int = 32
    length_group_size: int = 16
    jit_compile_mixed: bool = True  # measure (5c), length groups + XLA
    smoke: bool = False
    quiet: bool = False

    @classmethod
    def resolved(cls, **values) -> "BenchmarkSettings":
        """Settings from command-line values: a None for a key of DEFAULTS takes its default, or with
        smoke=True its SMOKE value."""
        for key in DEFAULTS:
            if values.get(key) is None:
                values[key] = (SMOKE if values.get("smoke") else DEFAULTS)[key]
        return cls(**values)

    def problems(self) -> list[str]:
        problems = []
        if not self.glue_dir or not os.path.isdir(self.glue_dir):
            problems.append(f"--glue_dir (or $GLUE_DIR) must name the GLUE data folder, got {self.glue_dir!r}")
        for name in ("steps", "warmup_steps", "batch_size", "predict_batch_size", "peak_matmul_size", "peak_matmuls",
                     "peak_repeats", "mixed_train_examples", "mixed_batch_size", "mixed_steps", "teacher_batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"--{name} must be at least 1")
        if self.examples_per_task < 0 or self.length_bucketing_window < 0:
            problems.append("--examples_per_task and --length_bucketing_window must be ≥ 0")
        return problems


# ---- FLOP model (pure; unit-tested) -------------------------------------------------------------------
def encoder_forward_flops(seq_len: int, hidden: int, intermediate: int, num_layers: int) -> int:
    """Forward FLOPs of a BERT encoder on ONE example of `seq_len` tokens (a multiply-add counts 2).

    Per layer:  Q, K, V and output projections  4 × 2·s·h·h   = 8·s·h²
                feed-forward up and down         2 × 2·s·h·i   = 4·s·h·i
                attention scores QKᵀ and the weighted sum of V (all heads together)
                                                 2 × 2·s²·h    = 4·s²·h
    Embedding lookups, LayerNorm, softmax, GELU, the pooler (2·h²) and the heads are left out
    (elementwise or per-example work, negligible next to the matmuls).
    """
    s, h, i = int(seq_len), int(hidden), int(intermediate)
    per_layer = 8 * s * h * h + 4 * s * h * i + 4 * s * s * h
    return int(num_layers) * per_layer


def batches_flops(shapes: list[tuple[int, int]], hidden: int, intermediate: int, num_layers: int,
                  training: bool) -> int:
    """FLOPs over batches given as (batch size, padded length); a training step ≈ 3 × forward
    (forward, plus backward ≈ 2 × forward for the gradients of activations and of weights)."""
    forward = sum(size * encoder_forward_flops(length, hidden, intermediate, num_layers) for size, length in shapes)
    return 3 * forward if training else forward


# ---- results ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class VariantResult:
    key: str  # "(1)" …
    name: str
    steps: int  # timed steps (batches)
    examples: int
    real_tokens: int  # sum of unpadded lengths
    padded_tokens: int  # sum of batch size × padded length
    seconds: float
    flops: int
    note: str = ""

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds

    @property
    def real_tokens_per_s(self) -> float:
        return self.real_tokens / self.seconds

    @property
    def padded_tokens_per_s(self) -> float:
        return self.padded_tokens / self.seconds

    @property
    def mean_padded_length(self) -> float:
        return self.padded_tokens / self.examples

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds


@dataclasses.dataclass
class Peak:
    dtype: str
    size: int
    matmuls: int
    repeats: int
    flops_per_s: float

    def describe(self, label: str) -> str:
        return (f"{label} matmul peak: {self.flops_per_s / 1e9:.1f} GFLOP/s (chains of {self.matmuls} "
                f"{self.size}×{self.size} matmuls, best of {self.repeats})")


@dataclasses.dataclass
class Report:
    meta: list[tuple[str, str]]
    variants: list[VariantResult]
    peaks: list[Peak]
    notes: list[str]

    def variant(self, key: str) -> VariantResult:
        return next(v for v in self.variants if v.key == key)

    def peak(self, dtype: str) -> Peak:
        return next(p for p in self.peaks if p.dtype == dtype)

    def ratios(self) -> list[tuple[str, float, float, str]]:
        """(name, ratio of ex/s, ratio of real tok/s, target text naming its unit), for the variants present."""
        keys = {v.key for v in self.variants}
        rows = []
        for a, b, target in RATIOS:
            if a in keys and b in keys:
                va, vb = self.variant(a), self.variant(b)
                rows.append((f"{a}/{b}", va.examples_per_s / vb.examples_per_s,
                             va.real_tokens_per_s / vb.real_tokens_per_s, target))
        return rows


# (numerator, denominator, target: "≥ x (ex/s)", "≥ x (real tok/s)" or "")
RATIOS = (("(1)", "(2)", f"≥ {TARGET_VS_KERAS} (ex/s)"), ("(1)", "(3)", f"≥ {TARGET_VS_STATIC} (ex/s)"),
          ("(4)", "(1)", ""), ("(5b)", "(5a)", f"≥ {TARGET_GROUPS} (ex/s)"), ("(5c)", "(5b)", ""),
          ("(6c)", "(6)", ""),
          ("(5b)", "(6)", f"≥ {TARGET_STUDENT_VS_TEACHERS} (real tok/s)"))


def _verdict(ex_ratio: float, tok_ratio: float, target: str) -> str:
    if not target:
        return ""
    ratio = tok_ratio if "tok/s" in target else ex_ratio
    return "met" if ratio >= float(target.split()[1]) else "NOT met"


def _variant_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    header = ["variant", "steps", "examples", "ex/s", "real tok/s", "padded tok/s", "mean padded len", "wall s",
              "GFLOP/s"]
    rows = [[f"{v.key} {v.name}", str(v.steps), str(v.examples), f"{v.examples_per_s:.1f}",
             f"{v.real_tokens_per_s:.0f}", f"{v.padded_tokens_per_s:.0f}", f"{v.mean_padded_length:.1f}",
             f"{v.seconds:.2f}", f"{v.flops_per_s / 1e9:.1f}"] for v in report.variants]
    return header, rows


def _efficiency_lines(report: Report) -> list[str]:
    bf16, fp32 = report.peak("bfloat16"), report.peak("float32")
    student = report.variant("(1)")
    return [
        bf16.describe("bf16"),
        fp32.describe("float32"),
        f"achieved training FLOP/s of (1): {student.flops_per_s / 1e9:.1f} GFLOP/s = "
        f"{100 * student.flops_per_s / bf16.flops_per_s:.1f}% of the measured bf16 peak "
        f"({100 * student.flops_per_s / fp32.flops_per_s:.1f}% of the float32 peak)",
    ]


def format_console(report: Report) -> str:
    header, rows = _variant_rows(report)
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths)))
    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows] + [""]
    for name, ex_ratio, tok_ratio, target in report.ratios():
        verdict = f"  target {target}: {_verdict(ex_ratio, tok_ratio, target)}" if target else ""
        out.append(f"{name} = {ex_ratio:.3f} (ex/s; real tok/s: {tok_ratio:.3f}){verdict}")
    out.append("")
    out.extend(_efficiency_lines(report))
    return "\n".join(out)


def format_markdown(report: Report) -> str:
    out = ["# bam_tf training throughput benchmark", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.meta] + [""]
    header, rows = _variant_rows(report)
    out += ["## Variants", "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1))
            + "|"] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
    out += ["## Ratios", "", "| ratio | ex/s | real tok/s | target | verdict |", "|---|---:|---:|---|---|"]
    out += [f"| {name} | {ex:.3f} | {tok:.3f} | {target or '—'} | {_verdict(ex, tok, target) or '—'} |"
            for name, ex, tok, target in report.ratios()] + [""]
    out += ["## Machine peak and achieved FLOP/s", ""] + [f"- {line}" for line in _efficiency_lines(report)] + [""]
    out += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(out)


# ---- machine ------------------------------------------------------------------------------------------
def load_average() -> str:
    """The 1/5/15-minute load averages, as the report shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def matmul_peak(dtype, size: int, matmuls: int, repeats: int) -> float:
    """Best FLOP/s of a chain of `matmuls` size×size matmuls inside one tf.function call."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    # Entries ~ N(0, 1/n) keep the chain's values O(1), so nothing overflows or underflows.
    a = tf.constant(rng.standard_normal((size, size)) / np.sqrt(size), dtype)
    b = tf.constant(rng.standard_normal((size, size)) / np.sqrt(size), dtype)

    @tf.function
    def chain(x, y):
        for _ in tf.range(matmuls):  # a while loop: every matmul depends on the previous one
            x = tf.matmul(x, y)
        return x[0, 0]

    chain(a, b).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        chain(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 * matmuls / best


# ---- data ---------------------------------------------------------------------------------------------
def _subset(data, keep: np.ndarray):
    pick = lambda column: [column[i] for i in keep]
    return dataclasses.replace(data, ids=pick(data.ids), text_a=pick(data.text_a),
                               text_b=None if data.text_b is None else pick(data.text_b),
                               labels=None if data.labels is None else data.labels[keep],
                               official_index=pick(data.official_index))


def load_task_examples(glue_dir: str, tasks, examples_per_task: int, seed: int, encoder, first_rows: bool = False):
    """Each task's training split, randomly subsampled (so lengths follow the real GLUE distribution) or its
    first rows (`first_rows`: as --max_train_examples takes them), order-augmented like the pipeline,
    encoded, with random teacher outputs of the right width."""
    from bam_tf.glue_reader import read_split
    from bam_tf.input_pipeline import TaskExamples
    from bam_tf.text_encoding import encode_task_data

    examples = []
    for task_index, task in enumerate(tasks):
        data = read_split(glue_dir, task, "train", examples_per_task if first_rows and examples_per_task else None)
        rng = np.random.default_rng([seed, 3, task_index])
        if examples_per_task and len(data) > examples_per_task:
            data = _subset(data, np.sort(rng.choice(len(data), examples_per_task, replace=False)))
        if task.symmetric:  # BamPipeline.split with the default --swap_pair_order
            data = data.with_swapped_pairs()
        encoded = encode_task_data(data, encoder)
        if task.is_regression:
            teacher = rng.uniform(0.0, 1.0, (len(data), 1))  # the training scale of regression heads
        else:
            teacher = rng.standard_normal((len(data), task.num_outputs)) * 2.0
        examples.append(TaskExamples(encoded, task.training_targets(data.labels), task.num_outputs,
                                     teacher.astype(np.float32)))
    return examples


def take_rows(encoded, rows: np.ndarray):
    from bam_tf.text_encoding import EncodedExamples

    starts = np.concatenate([[0], np.cumsum(encoded.lengths)[:-1]])
    pieces = [np.arange(starts[r], starts[r] + encoded.lengths[r]) for r in rows]
    flat = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
    return EncodedExamples(encoded.token_ids[flat], encoded.segment_ids[flat], encoded.lengths[rows])


def dataset_batch_shapes(dataset, skip: int) -> tuple[list[tuple[int, int]], int, int]:
    """(batch size, padded length) of every batch after the first `skip` (of each length group of a batch:
    training_dataset yields tuples of groups), their real token count, and how many of them have a shape
    no earlier one had (what XLA compiles anew)."""
    shapes, real, seen, new_shapes = [], 0, set(), 0
    for index, groups in enumerate(dataset):
        for group in groups if isinstance(groups, tuple) else (groups,):
            mask = group["padding_mask"].numpy()
            if index >= skip:
                shapes.append(mask.shape)
                real += int(mask.sum())
                new_shapes += mask.shape not in seen
            seen.add(mask.shape)
    return shapes, real, new_shapes


def inference_batch_shapes(lengths: np.ndarray, batch_size: int) -> tuple[list[tuple[int, int]], int]:
    """The batches `inference_dataset` makes: examples sorted by length, each batch padded to its longest."""
    ordered = np.sort(lengths, kind="stable")
    shapes = [(len(chunk), int(chunk.max())) for chunk in np.split(ordered, range(batch_size, len(ordered), batch_size))]
    return shapes, int(lengths.sum())


# ---- the benchmark --------------------------------------------------------------------------------------
class Benchmark:
    def __init__(self, settings: BenchmarkSettings, start_load: str = "n/a"):
        import keras
        import tensorflow as tf

        from bam_tf.backbone import load_backbone
        from bam_tf.config import BamConfig
        from bam_tf.distribution import resolve_precision
        from bam_tf.glue_tasks import parse_task_list
        from bam_tf.length_bucketing import bucket_by_length
        from bam_tf.task_sampler import example_stream
        from bam_tf.text_encoding import TextEncoder

        self.settings = settings
        self.start_load = start_load
        self.defaults = BamConfig()  # the pipeline's own defaults for everything not benchmarked
        self.strategy = tf.distribute.get_strategy()
        self.precision = settings.precision or resolve_precision("auto", self.strategy)
        self.tasks = parse_task_list(settings.tasks)
        keras.mixed_precision.set_global_policy(self.precision)

        tokenizer = load_backbone(settings.backbone, load_weights=False).tokenizer
        self.encoder = TextEncoder(tokenizer, STATIC_LENGTH)
        started = time.perf_counter()
        self.examples = load_task_examples(settings.glue_dir, self.tasks, settings.examples_per_task, settings.seed,
                                           self.encoder)
        self.data_seconds = time.perf_counter() - started
        self.sizes = [len(e.encoded) for e in self.examples]
        self.total_steps = settings.warmup_steps + settings.steps
        self.stream = example_stream(self.sizes, self.defaults.task_weight_exponent, settings.batch_size,
                                     self.total_steps, "mixed", settings.seed)
        self.bucketed = bucket_by_length(self.stream, [e.encoded.lengths for e in self.examples],
                                         settings.length_bucketing_window, settings.seed)
        shape_probe = load_backbone(settings.backbone, load_weights=False).backbone
        self.shape = dict(hidden=shape_probe.hidden_dim, intermediate=shape_probe.intermediate_dim,
                          num_layers=shape_probe.num_layers)
        self.num_heads = shape_probe.num_heads
        del shape_probe
        self._mixed = None

    # -- helpers
    def fresh_start(self) -> None:
        """Same state before every variant: no leftover Keras state, same policy, same seed."""
        import keras

        keras.backend.clear_session()  # also resets the global dtype policy, so set it again
        gc.collect()
        keras.mixed_precision.set_global_policy(self.precision)
        keras.utils.set_random_seed(self.settings.seed)

    def optimizer(self, num_layers: int):
        from bam_tf.distribution import wrap_for_precision
        from bam_tf.optimizer import create_optimizer

        d = self.defaults
        return wrap_for_precision(create_optimizer(
            peak_learning_rate=d.learning_rate, total_steps=self.total_steps, warmup_fraction=d.warmup_fraction,
            weight_decay=d.weight_decay, layerwise_lr_decay=d.layerwise_lr_decay, num_layers=num_layers,
            clip_global_norm=d.clip_global_norm or None, adam_bias_correction=d.adam_bias_correction),
            self.precision)

    def student(self, compile_model: bool = True):
        """The model BamPipeline._train_and_save builds for the student (bam_tf.stage)."""
        from bam_tf.stage import compiled_stage_model

        with self.strategy.scope():
            return compiled_stage_model(self.defaults, self.tasks, learning_rate=self.defaults.learning_rate,
                                        total_steps=self.total_steps, precision=self.precision,
                                        compile_model=compile_model)

    def jit_note(self, new_shapes: int) -> str:
        if not self.settings.jit_compile:
            return ""
        return f"{new_shapes} of the {self.settings.steps} timed steps had a batch shape not seen before (XLA compile)"

    def flops(self, shapes, training: bool = True) -> int:
        return batches_flops(shapes, training=training, **self.shape)

    def result(self, key, name, shapes, real, seconds, training=True, note="", steps=None):
        return VariantResult(key, name, steps=steps or len(shapes), examples=sum(b for b, _ in shapes), real_tokens=real,
                             padded_tokens=sum(b * length for b, length in shapes), seconds=seconds,
                             flops=self.flops(shapes, training), note=note)

    # -- variants
    def timed_training(self, examples, stream, options, skip: int):
        """Train a fresh student on `stream` through bam_tf.trainer.train, reading the clock after every step:
        (the padded shapes and real tokens of the batches after the first `skip` — of their length groups —,
        how many of those shapes were new, the clock reads, the clock at the start, the length plan's why)."""
        from bam_tf.input_pipeline import training_dataset
        from bam_tf.trainer import length_plan, train

        used, multiple, why = length_plan(examples, stream, 1, options)  # what train() decides
        shapes, real, new_shapes = dataset_batch_shapes(
            training_dataset(examples, stream, 0, options.static_length, group_size=used, length_multiple=multiple),
            skip=skip)
        self.fresh_start()
        model = self.student()
        stamps = []

        def stamp():
            # train() calls `evaluate` after every step when eval_every=1 (once after the loop for the
            # last step), right after that step's statistics were copied to the host: a clock read at
            # the end of every step, through the trainer's own loop.
            stamps.append(time.perf_counter())
            return {}

        started = time.perf_counter()
        train(model, examples, stream, self.strategy, dataclasses.replace(options, evaluate=stamp))
        if len(stamps) != stream.num_steps:
            raise RuntimeError(f"expected one clock read per step ({stream.num_steps}), got {len(stamps)}: "
                               "bam_tf.trainer.train no longer calls `evaluate` after every step with eval_every=1")
        del model
        return shapes, real, new_shapes, stamps, started, why

    def student_variant(self, key: str, name: str, stream, static_length: int | None) -> VariantResult:
        from bam_tf.trainer import TrainingOptions

        a = self.settings
        options = TrainingOptions(description=name, verbose=False, log_every=self.total_steps + 1, eval_every=1,
                                  jit_compile=a.jit_compile, static_length=static_length)  # whole batches, as (2)
        shapes, real, new_shapes, stamps, _, _ = self.timed_training(self.examples, stream, options, a.warmup_steps)
        seconds = stamps[-1] - stamps[a.warmup_steps - 1]
        return self.result(key, name, shapes, real, seconds, note=self.jit_note(new_shapes))

    def mixed_stream(self):
        """The faithful config's data and student stream (configs/experiments/cpu_mini_glue_faithful.flags):
        each task's first --mixed_train_examples rows, mixed batches of --mixed_batch_size over
        --mixed_epochs epochs, length-bucketed as the pipeline does; its whole-stream padding; and
        --mixed_steps of its batches, evenly spaced over it, run twice (the first pass traces and compiles,
        the second is timed)."""
        if self._mixed is None:
            from bam_tf.length_bucketing import bucket_by_length
            from bam_tf.length_groups import group_sizes, padded_tokens
            from bam_tf.task_sampler import ExampleStream, example_stream, num_train_steps

            a, d = self.settings, self.defaults
            examples = load_task_examples(a.glue_dir, self.tasks, a.mixed_train_examples, a.seed, self.encoder,
                                          first_rows=True)
            sizes = [len(e.encoded) for e in examples]
            batch = a.mixed_batch_size
            steps = num_train_steps(sizes, a.mixed_epochs, batch)
            lengths = [e.encoded.lengths for e in examples]
            stream = bucket_by_length(example_stream(sizes, d.task_weight_exponent, batch, steps, "mixed", a.seed),
                                      lengths, a.length_bucketing_window, a.seed)
            slot_lengths = stream.slot_values(lengths).reshape(steps, batch)
            cap = max(int(x.max()) for x in lengths)
            real = int(slot_lengths.sum())
            padding = {"whole": padded_tokens(slot_lengths, [batch], 1, cap) / real,
                       "groups": padded_tokens(slot_lengths, group_sizes(batch, a.length_group_size), 1, cap) / real}
            picked = np.linspace(0, steps - 1, min(a.mixed_steps, steps)).astype(int)
            slots = (picked[:, None] * batch + np.arange(batch)[None, :]).reshape(-1)
            twice = ExampleStream(np.tile(stream.task_ids[slots], 2), np.tile(stream.example_indices[slots], 2), batch)
            self._mixed = (examples, sizes, steps, twice, padding)
        return self._mixed

    def twice_run_variant(self, key: str, name: str, examples, stream, group_size: int, jit_compile: bool,
                          note: str = "") -> VariantResult:
        """Train `stream` (the same batches twice) through bam_tf.trainer.train; time the second pass."""
        from bam_tf.trainer import TrainingOptions

        passes = stream.num_steps // 2
        options = TrainingOptions(description=name, verbose=False, log_every=stream.num_steps + 1, eval_every=1,
                                  jit_compile=jit_compile, group_size=group_size)
        shapes, real, _, stamps, started, why = self.timed_training(examples, stream, options, passes)
        seconds = stamps[-1] - stamps[passes - 1]
        first = stamps[passes - 1] - started
        return self.result(key, name, shapes, real, seconds, steps=passes, note="; ".join(filter(None, [
            note, why, f"first pass (tracing{' and XLA compiles' if jit_compile else ''}) {first:.1f} s, "
                       f"timed second pass {seconds:.1f} s"])))

    def mixed_variants(self) -> list[VariantResult]:
        from bam_tf.length_bucketing import bucket_by_length
        from bam_tf.task_sampler import ExampleStream, example_stream

        a, d = self.settings, self.defaults
        examples, sizes, steps, twice, padding = self.mixed_stream()
        batch, groups = a.mixed_batch_size, a.length_group_size
        stream_note = (f"{twice.num_steps // 2} of the {steps} batches of {batch} of the stream; the whole stream "
                       f"pads to {padding['whole']:.2f} padded tokens per real token in whole batches, "
                       f"{padding['groups']:.2f} in groups of {groups}")
        results = [
            self.twice_run_variant("(5a)", f"student, faithful stream, one padded batch of {batch}", examples, twice,
                                   0, False, stream_note),
            self.twice_run_variant("(5b)", f"student, faithful stream, length groups of {groups}", examples, twice,
                                   groups, False),
        ]
        if a.jit_compile_mixed:
            results.append(self.twice_run_variant("(5c)", f"student, faithful stream, length groups of {groups} + XLA",
                                                  examples, twice, groups, True))
        # The teachers' steps on the same data: one task per batch, length-bucketed, as each teacher trains.
        teacher_steps = twice.num_steps // 2 * max(1, batch // a.teacher_batch_size)
        per_task = bucket_by_length(example_stream(sizes, d.task_weight_exponent, a.teacher_batch_size, teacher_steps,
                                                   "per_task", a.seed),
                                    [e.encoded.lengths for e in examples], a.length_bucketing_window, a.seed)
        per_task_twice = ExampleStream(np.tile(per_task.task_ids, 2), np.tile(per_task.example_indices, 2),
                                       a.teacher_batch_size)
        results.append(self.twice_run_variant("(6)", f"teacher steps, same tasks (one task per batch of "
                                              f"{a.teacher_batch_size}, bucketed)", examples, per_task_twice,
                                              groups, False))
        if a.jit_compile_mixed:
            results.append(self.twice_run_variant("(6c)", "teacher steps, same tasks + XLA", examples, per_task_twice,
                                                  groups, True))
        return results

    def keras_variant(self) -> VariantResult:
        import keras
        import keras_hub
        import tensorflow as tf

        from bam_tf.backbone import load_backbone
        from bam_tf.input_pipeline import training_dataset

        a = self.settings
        name = "keras-hub BertTextClassifier.fit, same batches"
        shapes, real, new_shapes = dataset_batch_shapes(training_dataset(self.examples, self.bucketed),
                                                        skip=a.warmup_steps)
        self.fresh_start()
        loaded = load_backbone(a.backbone)
        model = keras_hub.models.BertTextClassifier(backbone=loaded.backbone, num_classes=2, preprocessor=None)
        if a.baseline_optimizer == "bam":
            optimizer = self.optimizer(loaded.backbone.num_layers)
        else:
            d = self.defaults
            optimizer = keras.optimizers.AdamW(learning_rate=d.learning_rate, weight_decay=d.weight_decay,
                                               global_clipnorm=d.clip_global_norm or None)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=a.jit_compile)
        dataset = training_dataset(self.examples, self.bucketed).map(
            lambda batch: ({k: batch[k] for k in FEATURES},
                           tf.clip_by_value(tf.cast(batch["label"], tf.int32), 0, 1)))
        stamps = []

        class Stamp(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if logs and "loss" in logs:
                    np.asarray(logs["loss"])  # the step's result is on the host
                stamps.append(time.perf_counter())

        model.fit(dataset, epochs=1, steps_per_epoch=self.total_steps, verbose=0, shuffle=False, callbacks=[Stamp()])
        if len(stamps) != self.total_steps:
            raise RuntimeError(f"fit ran {len(stamps)} steps, expected {self.total_steps}")
        seconds = stamps[-1] - stamps[a.warmup_steps - 1]
        del model
        optimizer_note = ("same BertAdamW as (1)" if a.baseline_optimizer == "bam"
                          else "keras.optimizers.AdamW")
        return self.result("(2)", name, shapes, real, seconds,
                           note="; ".join(filter(None, [optimizer_note, self.jit_note(new_shapes)])))

    def predict_variant(self) -> VariantResult:
        from bam_tf.evaluation import predict_head
        from bam_tf.text_encoding import EncodedExamples

        a = self.settings
        batch = a.predict_batch_size
        self.fresh_start()
        model = self.student(compile_model=False)
        # Warm-up: a few batches of mixed lengths, the last one partial: the one trace (any shape) and
        # oneDNN's first-use costs fall before the clock starts.
        everything = EncodedExamples.concatenate([e.encoded for e in self.examples])
        count = min(len(everything), max(1, a.warmup_steps * batch - batch // 2))
        rng = np.random.default_rng([a.seed, 4])
        warm = take_rows(everything, np.sort(rng.choice(len(everything), count, replace=False)))
        predict_head(model, warm, self.tasks[0].name, batch)
        traces_before = model.inference_traces()
        start = time.perf_counter()
        for task, task_examples in zip(self.tasks, self.examples):
            predict_head(model, task_examples.encoded, task.name, batch)
        seconds = time.perf_counter() - start
        retraces = model.inference_traces() - traces_before
        shapes, real = [], 0
        for task_examples in self.examples:
            task_shapes, task_real = inference_batch_shapes(task_examples.encoded.lengths, batch)
            shapes += task_shapes
            real += task_real
        del model
        return self.result("(4)", f"teacher predictions (predict_head, batch {batch})", shapes, real, seconds,
                           training=False, note=f"{retraces} retrace(s) inside the timed pass")

    def run(self) -> Report:
        import tensorflow as tf

        a = self.settings
        say = print if not a.quiet else (lambda *_: None)
        say(f"data: {dict(zip([t.name for t in self.tasks], self.sizes))} examples "
            f"(encoded in {self.data_seconds:.1f} s); precision {self.precision}; batch {a.batch_size}")
        peaks = []
        for dtype in (tf.bfloat16, tf.float32):
            peaks.append(Peak(dtype.name, a.peak_matmul_size, a.peak_matmuls, a.peak_repeats,
                              matmul_peak(dtype, a.peak_matmul_size, a.peak_matmuls, a.peak_repeats)))
            say(f"{dtype.name} matmul peak: {peaks[-1].flops_per_s / 1e9:.1f} GFLOP/s")
        student = lambda: self.student_variant("(1)", "BAM student (bucketed, per-batch padding)", self.bucketed, None)
        plan = [student, self.keras_variant] * max(1, a.rounds) + [
            lambda: self.student_variant("(3)", f"BAM student, static padding {STATIC_LENGTH}, no bucketing",
                                         self.stream, STATIC_LENGTH),
            self.predict_variant,
            self.mixed_variants,
        ]
        rounds = {}
        for run_variant in plan:
            results = run_variant()
            for result in results if isinstance(results, list) else [results]:
                rounds.setdefault(result.key, []).append(result)
                say(f"{result.key} {result.name}: {result.examples_per_s:.1f} ex/s, "
                    f"{result.real_tokens_per_s:.0f} real tok/s over {result.seconds:.2f} s")
        variants = [max(results, key=lambda r: r.examples_per_s) for results in rounds.values()]
        notes = self.notes(variants) + [
            f"{key}: fastest of {len(results)} alternating rounds; all rounds "
            + ", ".join(f"{r.examples_per_s:.1f}" for r in results) + " ex/s"
            for key, results in rounds.items() if len(results) > 1]
        return Report(self.meta(), variants, peaks, notes)

    def meta(self) -> list[tuple[str, str]]:
        import keras
        import keras_hub
        import tensorflow as tf

        a = self.settings
        try:
            usable = len(os.sched_getaffinity(0))
        except AttributeError:
            usable = os.cpu_count()
        s = self.shape
        return [
            ("command", f"`{shlex.join([sys.executable] + sys.argv)}`"),
            ("date", datetime.datetime.now().astimezone().isoformat(timespec="seconds")),
            ("CPU", cpu_model()),
            ("cores", f"{os.cpu_count()} logical ({usable} usable by this process)"),
            ("load average at start (1/5/15 min)", self.start_load),
            ("load average at end (1/5/15 min)", load_average()),
            ("TensorFlow / Keras / keras-hub", f"{tf.__version__} / {keras.__version__} / {keras_hub.__version__}"),
            ("precision", self.precision),
            ("batch size", str(a.batch_size)),
            ("backbone", f"{a.backbone} (layers {s['num_layers']}, hidden {s['hidden']}, heads {self.num_heads}, "
                         f"intermediate {s['intermediate']})"),
            ("tasks (training examples)", ", ".join(f"{t.name} ({n})" for t, n in zip(self.tasks, self.sizes))),
            ("examples per task (before MRPC/STS-B swapped pairs)", str(a.examples_per_task)),
            ("steps", f"{a.steps} timed after {a.warmup_steps} warm-up; (1) and (2) alternate over {a.rounds} rounds, fastest kept"),
            ("length bucketing window", f"{a.length_bucketing_window} batches"),
            ("(5)-(6) data", f"first {a.mixed_train_examples} training rows of each task (before MRPC/STS-B swapped "
                             f"pairs); student batch {a.mixed_batch_size}, {a.mixed_steps} timed batches over "
                             f"{a.mixed_epochs:g} epochs; teacher batch {a.teacher_batch_size}; length groups of "
                             f"{a.length_group_size}"),
            ("jit_compile", str(a.jit_compile)),
            ("seed", str(a.seed)),
        ] + ([("mode", "--smoke (tiny random backbone: checks the tool, not the machine)")] if a.smoke else [])

    def notes(self, variants: list[VariantResult]) -> list[str]:
        notes = [
            "ex/s counts training examples per second of the timed steps; real tokens are the unpadded "
            "lengths ([CLS] … [SEP] included), padded tokens batch size × padded length.",
            "(1) and (3) run through `bam_tf.trainer.train` (the `strategy.run(model.train_step)` step BamPipeline "
            "uses) with teacher outputs attached (random logits of each task's width; the cost is the same as "
            "real ones) and teacher annealing on; (3) uses the sampler's stream without length bucketing.",
            "(2) trains on the same batches as (1): same example order, token ids and padding; its clock is read "
            "in a Keras callback's on_train_batch_end. (1)/(3) time different examples (bucketing reorders the "
            "stream), hence the real-token ratio next to the example ratio.",
            "(4) times one full pass of predict_head over every task's training examples (length-sorted "
            "batches), after a warm-up pass over --warmup_steps batches' worth of examples.",
            "GFLOP/s: analytic BERT-encoder matmul FLOPs (per layer 8·s·h² + 4·s·h·i + 4·s²·h per example of "
            "padded length s, training = 3 × forward, (4) forward only) over the padded batch shapes of the "
            "timed steps, divided by the timed seconds.",
        ]
        notes.append(
            "(5a)-(5c) train the student on the faithful grid's own stream (configs/experiments/"
            "cpu_mini_glue_faithful.flags: mixed batches kept mixed, bucketed, padded per batch): (5a) as bam_tf "
            "trained it before length groups, (5b) with them (the pipeline's default), (5c) also XLA-compiling "
            "each group (lengths rounded up to multiples of 16). (6) trains the teachers' steps on the same data, "
            "(6c) with XLA. "
            "Each runs its batches twice through bam_tf.trainer.train and times the second pass; every "
            "variant computes the same updates (length groups add up to the unsplit batch's gradient).")
        notes.append(
            "(1) pads each mixed batch whole, so that (2) can train on the very same batches; its (1)/(3) target "
            "dates from bucketing that un-mixed batches. The student as the pipeline trains it is (5b).")
        notes += [f"{v.key}: {v.note}" for v in variants if v.note]
        if self.settings.jit_compile:
            notes.append("--jit_compile: XLA compiles once per distinct batch shape, so with per-batch padding "
                         "lengths first seen in the timed steps are compiled inside the timed window.")
        return notes


def run_benchmark(settings: BenchmarkSettings) -> Report:
    """Run every variant, print the results and write them as Markdown to `settings.output` (atomically)."""
    start_load = load_average()
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    report = Benchmark(settings, start_load).run()
    print()
    print(format_console(report))
    atomic_files.write_text(settings.output, format_markdown(report))
    print(f"\nwrote {settings.output}")
    return report
