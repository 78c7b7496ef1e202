"""What every variant of the benchmark shares: the tasks, encoded examples and stream of (1)-(4), the
backbone's shape, a fresh start per variant, and one timed training run through bam_tf.trainer.train."""

from __future__ import annotations

import dataclasses
import gc
import time

from bam_tf.benchmark.data import dataset_batch_shapes, load_task_examples
from bam_tf.benchmark.flops import batches_flops
from bam_tf.benchmark.results import VariantResult
from bam_tf.benchmark.settings import STATIC_LENGTH, BenchmarkSettings


class Harness:
    """The benchmark's state and helpers; the variants (subsample_variants, faithful_variants) build on it."""

    def __init__(self, settings: BenchmarkSettings, start_load: str = "n/a"):
        import keras
        import tensorflow as tf

        from bam_tf.backbone import load_backbone
        from bam_tf.config import BamConfig
        from bam_tf.distribution import resolve_precision
        from bam_tf.task_set import GLUE
        from bam_tf.length_bucketing import bucket_by_length
        from bam_tf.task_sampler import example_stream
        from bam_tf.text_encoding import TextEncoder

        self.settings = settings
        self.start_load = start_load
        self.defaults = BamConfig()  # the pipeline's own defaults for everything not benchmarked
        self.strategy = tf.distribute.get_strategy()
        self.precision = resolve_precision(settings.precision or "auto", self.strategy)  # refusals as a run's
        self.tasks = GLUE.parse_list(settings.tasks)
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
        self._mixed = None  # FaithfulStreamVariants.mixed_stream, built on first use

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
