"""Variants (5)-(6), on the faithful grid's own stream: the student with and without length groups and
XLA, and the teachers' steps on the same data; the same batches run twice, the second pass timed."""

from __future__ import annotations

import numpy as np

from bam_tf.benchmark.data import load_task_examples
from bam_tf.benchmark.harness import Harness
from bam_tf.benchmark.results import VariantResult


class FaithfulStreamVariants(Harness):
    """(5)-(6) on the faithful config's stream, loaded on first use."""

    def mixed_stream(self):
        """The faithful config's data and student stream (configs/experiments/cpu_mini_glue_faithful.flags):
        each task's first --mixed_train_examples rows, mixed batches of --mixed_batch_size over
        --mixed_epochs epochs, length-bucketed as that config does; its whole-stream padding; and
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
        # The teachers' steps on the same data: one task per batch, length-bucketed, as the faithful config trains each teacher.
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
