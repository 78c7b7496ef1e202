"""How an experiment trains: BamPipeline in this process, one pipeline and one fresh Keras session per call.

The experiment runner (bam_tf.experiments.experiment) asks for whole pipeline runs, teacher outputs of a
trained model and dev scores of a saved model; all of it is BamPipeline's own code. This is the only
module of the runner that imports TensorFlow (the report's λ plot, in report_lambda, imports Keras).
"""

from __future__ import annotations

import contextlib
import os

import keras

from bam_tf.config import BamConfig
from bam_tf.run_data import read_run_split
from bam_tf.task_set import task_set_of
from bam_tf.pipeline import BamPipeline


class PipelineBackend:
    def __init__(self, verbose: bool = True):
        self.verbose = verbose
        self._train_data: dict[tuple, tuple[int, str]] = {}

    def run_pipeline(self, config: BamConfig, also_predict: bool = False) -> None:
        """BamPipeline(config).run(); `also_predict` then writes the teachers' outputs with the same
        pipeline (its encoded data is reused) — for mode=teachers when a distillation method follows."""
        keras.backend.clear_session()
        try:
            pipeline = BamPipeline(config, verbose=self.verbose)
            pipeline.run()
            if also_predict:
                keras.backend.clear_session()
                pipeline.write_teacher_outputs()
        finally:
            keras.backend.clear_session()

    def write_teacher_outputs(self, config: BamConfig, teacher_dir: str, output_dir: str) -> None:
        """The trained model in `teacher_dir` as teacher: its outputs on each of `config`'s train splits."""
        with self._pipeline(config) as pipeline:
            pipeline.write_teacher_outputs(teacher_dir, output_dir)

    def dev_results(self, config: BamConfig, model_dir: str) -> None:
        """Dev scores of a saved model whose run died before writing its dev_results.json."""
        with self._pipeline(config) as pipeline:
            pipeline.dev_results(model_dir)

    def train_sizes(self, config: BamConfig) -> dict[str, int] | None:
        """Training examples per task as the run uses them (cap, swapped pairs); None for tfds data."""
        if config.data_source != "tsv":
            return None
        return {task.name: self._train_facts(config, task.name)[0]
                for task in task_set_of(config.task_defs).parse_list(config.tasks)}

    def train_fingerprint(self, config: BamConfig, task_name: str) -> str:
        """The fingerprint of `task_name`'s training data as `config`'s run reads it (teacher outputs carry it)."""
        return self._train_facts(config, task_name)[1]

    def _train_facts(self, config: BamConfig, task_name: str) -> tuple[int, str]:
        """(size, fingerprint) of a task's training data as the run reads it; read once per grid."""
        key = (os.path.abspath(config.glue_dir), config.data_source, config.tfds_data_dir, task_name,
               config.max_train_examples, config.swap_pair_order, config.task_defs)
        if key not in self._train_data:
            data = read_run_split(config, task_set_of(config.task_defs).get(task_name), "train")
            self._train_data[key] = (len(data), data.fingerprint())
        return self._train_data[key]

    @staticmethod
    @contextlib.contextmanager
    def _pipeline(config: BamConfig):
        """A quiet pipeline outside BamPipeline.run (whose stages set the run's precision themselves)."""
        keras.backend.clear_session()
        try:
            yield BamPipeline(config, verbose=False)
        finally:
            keras.backend.clear_session()
