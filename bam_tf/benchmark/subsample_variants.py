"""Variants (1)-(4), on a random subsample of each task: the BAM student, keras-hub `fit` on the same
batches, the student with static padding, and teacher predictions."""

from __future__ import annotations

import time

import numpy as np

from bam_tf.benchmark.data import dataset_batch_shapes, inference_batch_shapes, take_rows
from bam_tf.benchmark.harness import Harness
from bam_tf.benchmark.results import VariantResult

# The inputs keras-hub's BertTextClassifier takes, of the batches training_dataset yields.
FEATURES = ("token_ids", "segment_ids", "padding_mask")


class SubsampleVariants(Harness):
    """(1)-(4) on the subsample and stream the Harness sets up."""

    def student_variant(self, key: str, name: str, stream, static_length: int | None) -> VariantResult:
        from bam_tf.trainer import TrainingOptions

        a = self.settings
        options = TrainingOptions(description=name, verbose=False, log_every=self.total_steps + 1, eval_every=1,
                                  jit_compile=a.jit_compile, static_length=static_length)  # whole batches, as (2)
        shapes, real, new_shapes, stamps, _, _ = self.timed_training(self.examples, stream, options, a.warmup_steps)
        seconds = stamps[-1] - stamps[a.warmup_steps - 1]
        return self.result(key, name, shapes, real, seconds, note=self.jit_note(new_shapes))

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
