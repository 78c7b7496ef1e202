"""python tools/benchmark.py [--smoke] [--output=results/benchmark.md] [...]

Training throughput of the BAM student step against a plain keras-hub classifier (bam_tf.benchmark,
whose docstring describes the variants and how they are timed), printed and written as Markdown.
"""

import argparse
import os
import sys

from bam_tf import benchmark
from bam_tf.benchmark import DEFAULTS, SMOKE, BenchmarkSettings


def parse_args(argv: list[str]) -> BenchmarkSettings:
    parser = argparse.ArgumentParser(
        prog="tools/benchmark.py", description=benchmark.__doc__,
        epilog="Example: python tools/benchmark.py --glue_dir=$GLUE_DIR --output=results/benchmark.md",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    d, s = DEFAULTS, SMOKE

    def smoke_help(text, key):
        return f"{text} (default {d[key]}; --smoke: {s[key]})"

    parser.add_argument("--glue_dir", default=os.environ.get("GLUE_DIR", ""),
                        help="GLUE data in the download_glue_data.py layout (default: $GLUE_DIR).")
    parser.add_argument("--output", default="results/benchmark.md", help="Markdown report to write (atomically).")
    parser.add_argument("--backbone", help=smoke_help("bam_tf --backbone value", "backbone"))
    parser.add_argument("--tasks", help=smoke_help("Comma-separated GLUE training tasks", "tasks"))
    parser.add_argument("--examples_per_task", type=int,
                        help=smoke_help("Random subsample of each task's train split, drawn before MRPC/STS-B "
                                        "get their swapped pairs (0: all)", "examples_per_task"))
    parser.add_argument("--steps", type=int, help=smoke_help("Timed training steps per variant", "steps"))
    parser.add_argument("--warmup_steps", type=int,
                        help=smoke_help("Untimed steps before the timed ones (≥ 1: tracing is excluded)",
                                        "warmup_steps"))
    parser.add_argument("--batch_size", type=int, default=32, help="Training batch size (default 32).")
    parser.add_argument("--predict_batch_size", type=int,
                        help=smoke_help("Batch size of (4) teacher predictions", "predict_batch_size"))
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"),
                        help="Keras dtype policy for every variant (default: what --precision=auto picks here, "
                             "bam_tf.distribution.resolve_precision; mixed_bfloat16 on bf16-capable CPUs).")
    parser.add_argument("--jit_compile", action="store_true", help="XLA-compile the training steps of (1)–(3).")
    parser.add_argument("--length_bucketing_window", type=int, default=32,
                        help="Batches per length-bucketing window in (1) and (2) (default 32, as the CPU experiment configs).")
    parser.add_argument("--baseline_optimizer", choices=("bam", "keras_adamw"), default="bam",
                        help="Optimizer of (2): bam = the same BertAdamW as (1) (default), keras_adamw = plain "
                             "keras.optimizers.AdamW with global_clipnorm.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of weights, dropout, sampling, subsampling.")
    parser.add_argument("--rounds", type=int, default=2,
                        help="Run (1) and (2) alternately this many times and keep each one's fastest round: "
                             "on a shared machine a single round can land in someone else's busy second.")
    parser.add_argument("--peak_matmul_size", type=int, help=smoke_help("n of the n×n peak matmuls", "peak_matmul_size"))
    parser.add_argument("--peak_matmuls", type=int, help=smoke_help("Matmuls chained per timed call", "peak_matmuls"))
    parser.add_argument("--peak_repeats", type=int, help=smoke_help("Timed calls; the best counts", "peak_repeats"))
    parser.add_argument("--mixed_train_examples", type=int,
                        help=smoke_help("(5)-(6): first rows of each task's train split, as --max_train_examples "
                                        "in configs/experiments/cpu_mini_glue_faithful.flags", "mixed_train_examples"))
    parser.add_argument("--mixed_batch_size", type=int, help=smoke_help("(5): the student's batch size", "mixed_batch_size"))
    parser.add_argument("--mixed_steps", type=int,
                        help=smoke_help("(5): batches timed, evenly spaced over the student's stream", "mixed_steps"))
    parser.add_argument("--mixed_epochs", type=float, default=4.0,
                        help="(5): epochs of the student's stream the timed batches are spread over (default 4).")
    parser.add_argument("--teacher_batch_size", type=int, default=32, help="(6): teacher batch size (default 32).")
    parser.add_argument("--length_group_size", type=int, default=16,
                        help="(5b), (5c), (6): --length_group_size of the pipeline (default 16).")
    parser.add_argument("--no_xla_variant", dest="jit_compile_mixed", action="store_false",
                        help="Skip (5c) and (6c), the XLA variants (their compiles take minutes on a CPU).")
    parser.add_argument("--smoke", action="store_true",
                        help="Tiny random backbone, 2 small tasks, few steps: checks the tool in a few minutes (--no_xla_variant for the quickest).")
    parser.add_argument("--quiet", action="store_true", help="Print only the final table.")
    settings = BenchmarkSettings.resolved(**vars(parser.parse_args(argv)))
    problems = settings.problems()
    if problems:
        parser.error("; ".join(problems))
    return settings


if __name__ == "__main__":
    benchmark.run_benchmark(parse_args(sys.argv[1:]))
