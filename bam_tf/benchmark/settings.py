"""The benchmark's settings: one field per flag of tools/benchmark.py, their defaults and --smoke's."""

from __future__ import annotations

import dataclasses
import os

DEFAULT_TASKS = "CoLA,SST-2,MRPC,STS-B,RTE"
STATIC_LENGTH = 128

# Settings --smoke changes, unless given on the command line.
SMOKE = {"backbone": "random:layers=2,hidden=32", "tasks": "CoLA,MRPC", "steps": 3, "warmup_steps": 2,
         "examples_per_task": 48, "predict_batch_size": 32, "peak_matmul_size": 256, "peak_matmuls": 4,
         "peak_repeats": 3, "mixed_train_examples": 48, "mixed_batch_size": 32, "mixed_steps": 2}
DEFAULTS = {"backbone": "all-MiniLM-L6-v2", "tasks": DEFAULT_TASKS, "steps": 40, "warmup_steps": 5,
            "examples_per_task": 2000, "predict_batch_size": 256, "peak_matmul_size": 2048, "peak_matmuls": 10,
            "peak_repeats": 5, "mixed_train_examples": 8551, "mixed_batch_size": 128, "mixed_steps": 12}


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
        for key in ("glue_dir", "output"):  # a leading ~ no shell expanded (--output=~/b.md), as training reads it
            if values.get(key):
                values[key] = os.path.expanduser(values[key])
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
