"""One benchmark run: the machine's peaks, every variant in order, the run's description and notes, and
the results printed and written as Markdown."""

from __future__ import annotations

import datetime
import os
import shlex
import sys

from bam_tf import atomic_files
from bam_tf.benchmark.faithful_variants import FaithfulStreamVariants
from bam_tf.benchmark.formatting import format_console, format_markdown
from bam_tf.benchmark.machine import cpu_model, load_average, matmul_peak
from bam_tf.benchmark.results import Peak, Report, VariantResult
from bam_tf.benchmark.settings import STATIC_LENGTH, BenchmarkSettings
from bam_tf.benchmark.subsample_variants import SubsampleVariants


class Benchmark(SubsampleVariants, FaithfulStreamVariants):
    """Every variant, run in order, with what the report says about the run."""

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
