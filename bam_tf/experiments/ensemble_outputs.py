"""bam_ensemble's teacher: the mean over seeds of the single-task teachers' outputs, and the record of which
seeds those were.

bam_ensemble averages the teachers of every seed of the grid's --seeds, so its result depends on them: its
outputs folder (ENSEMBLE_SEEDS_FILE) and its results lines (ENSEMBLE_SEEDS_KEY) record them, and a grid of
other seeds refuses both rather than mixing ensembles of different sizes in one report.
"""

from __future__ import annotations

import os

import numpy as np

from bam_tf import atomic_files
from bam_tf.experiments.results_file import ExperimentError
from bam_tf.teacher_outputs import TeacherOutputs, load_teacher_outputs, save_teacher_outputs

ENSEMBLE_SEEDS_KEY = "ensemble_seeds"
ENSEMBLE_SEEDS_FILE = "ensemble_seeds.json"


def check_ensemble_seeds(recorded: list[int], seeds: list[int], where: str) -> None:
    """ExperimentError unless an ensemble of the teachers of `recorded` seeds (said to be `where`) is one of `seeds`'."""
    if sorted(recorded) != sorted(seeds):
        raise ExperimentError(
            f"{where}, an ensemble of the teachers of seeds {', '.join(map(str, sorted(recorded)))}; --seeds is "
            f"now {', '.join(map(str, seeds))}, and an ensemble of other seeds is another result: use "
            "another --experiment_dir and --results_file, or leave bam_ensemble out of --methods to run other "
            "seeds of the other methods")


def ensemble_seeds_record(outputs_dir: str, seeds: list[int], tasks: list[str]) -> str:
    """The file in `outputs_dir` recording which seeds' teachers its outputs average; refuses a record of other
    seeds than `seeds`, and outputs of `tasks` already there without a record (averaged by an older bam_tf)."""
    path = os.path.join(outputs_dir, ENSEMBLE_SEEDS_FILE)
    if os.path.exists(path):
        check_ensemble_seeds(atomic_files.read_json(path)["seeds"], seeds, f"{path} records")
    elif any(os.path.exists(os.path.join(outputs_dir, f"{task}.npz")) for task in tasks):
        raise ExperimentError(f"{outputs_dir} holds outputs averaged before bam_tf recorded which seeds' teachers "
                              "they average: delete that folder (and the student beside it) to average this "
                              "grid's seeds")
    return path


def write_ensemble_outputs(source_dirs: list[str], target_dir: str, tasks: list[str]) -> None:
    """<TASK>.npz in `target_dir` for each of `tasks`: the mean of the outputs in `source_dirs` (one folder per
    seed's teachers; logits, scores for STS-B), example by example."""
    for task in tasks:
        paths = [os.path.join(source_dir, f"{task}.npz") for source_dir in source_dirs]
        loaded = [load_teacher_outputs(path) for path in paths]
        first = loaded[0]
        ids = first.example_ids.tolist()
        aligned = []
        for path, outputs in zip(paths, loaded):
            if outputs.data_fingerprint != first.data_fingerprint or outputs.task_name != first.task_name:
                raise ExperimentError(f"{path}: computed on other {task} data than {paths[0]}; cannot average")
            if outputs.outputs.shape != first.outputs.shape or sorted(outputs.example_ids.tolist()) != sorted(ids):
                raise ExperimentError(f"{path}: example ids or shape differ from {paths[0]}; cannot average")
            row = {example_id: i for i, example_id in enumerate(outputs.example_ids.tolist())}
            aligned.append(outputs.outputs[[row[example_id] for example_id in ids]].astype(np.float64))
        mean = np.mean(aligned, axis=0).astype(np.float32)
        save_teacher_outputs(os.path.join(target_dir, f"{task}.npz"),
                             TeacherOutputs(task, first.example_ids, mean, first.data_fingerprint))
