"""Teacher predictions on a task's training split, stored as .npz (no pickle), checked before use.

Each file holds the teacher's raw outputs (logits; the score for STS-B), the example ids they belong to,
and the fingerprint of the exact data they were computed on. A student refuses a file whose data,
ids, width or values do not match its own training set, before any training starts.
"""

import dataclasses
import zipfile

import numpy as np

from bam_tf.atomic_files import atomic_open
from bam_tf.glue_reader import TaskData
from bam_tf.user_errors import InputError

# Format 2: regression outputs are on the training scale ([0, 1], see Task.training_targets).
# Format 1 (bam_tf before that) stored STS-B scores on 0–5; its classification logits are still valid.
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)


class TeacherOutputsError(InputError):
    pass


@dataclasses.dataclass
class TeacherOutputs:
    task_name: str
    example_ids: np.ndarray  # str [num_examples]
    outputs: np.ndarray  # float32 [num_examples, num_outputs]; regression: on the training scale
    data_fingerprint: str
    format_version: int = _FORMAT_VERSION


def save_teacher_outputs(path: str, teacher_outputs: TeacherOutputs) -> None:
    with atomic_open(path, "wb") as f:  # readers never see a half-written file
        np.savez(f, format_version=np.int32(_FORMAT_VERSION), task_name=np.str_(teacher_outputs.task_name),
                 example_ids=np.asarray(teacher_outputs.example_ids, dtype=str),
                 outputs=np.asarray(teacher_outputs.outputs, dtype=np.float32),
                 data_fingerprint=np.str_(teacher_outputs.data_fingerprint))


def load_teacher_outputs(path: str) -> TeacherOutputs:
    try:
        with np.load(path, allow_pickle=False) as npz:
            version = int(npz["format_version"])
            if version not in _READABLE_VERSIONS:
                raise TeacherOutputsError(f"{path}: format version {version}, expected one of "
                                          f"{', '.join(map(str, _READABLE_VERSIONS))}")
            return TeacherOutputs(str(npz["task_name"]), npz["example_ids"], npz["outputs"],
                                  str(npz["data_fingerprint"]), version)
    except FileNotFoundError:
        raise TeacherOutputsError(f"{path}: no teacher outputs here (run --mode=predict first)") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:  # EOF: empty; BadZip: cut short
        if isinstance(error, TeacherOutputsError):
            raise
        raise TeacherOutputsError(f"{path}: not a bam_tf teacher-outputs file ({type(error).__name__}: {error}); "
                                  "delete it to write it again") from error


def align_teacher_outputs(teacher_outputs: TeacherOutputs, data: TaskData, source: str) -> np.ndarray:
    """Teacher outputs in `data`'s example order, after checking they belong to exactly this data."""
    task = data.task
    if teacher_outputs.task_name != task.name:
        raise TeacherOutputsError(f"{source}: outputs are for task {teacher_outputs.task_name}, not {task.name}")
    if teacher_outputs.format_version < task.first_usable_format:
        raise TeacherOutputsError(
            f"{source}: format {teacher_outputs.format_version} holds {task.name} scores on the label scale "
            f"{task.label_range[0]:g}–{task.label_range[1]:g}; students now train on scores scaled to [0, 1]. "
            "Delete it and its teacher, and re-run --mode=teachers and --mode=predict")
    outputs = teacher_outputs.outputs
    if outputs.ndim != 2 or outputs.shape[1] != task.num_outputs:
        raise TeacherOutputsError(f"{source}: outputs have shape {outputs.shape}; {task.name} needs "
                                  f"[num_examples, {task.num_outputs}]")
    if len(outputs) != len(data):
        raise TeacherOutputsError(f"{source}: {len(outputs)} teacher outputs for {len(data)} training examples "
                                  f"of {task.name} (same --max_train_examples and --swap_pair_order?); to compute "
                                  "them on this data, delete the file (and any it was copied from) and run "
                                  "--mode=predict (teachers are kept)")
    bad_rows = np.flatnonzero(~np.isfinite(outputs).all(axis=1))
    if len(bad_rows):
        raise TeacherOutputsError(f"{source}: {len(bad_rows)} rows hold NaN or infinity, first for example "
                                  f"{teacher_outputs.example_ids[bad_rows[0]]}")
    row_of_id = {example_id: row for row, example_id in enumerate(teacher_outputs.example_ids.tolist())}
    missing = [example_id for example_id in data.ids if example_id not in row_of_id]
    if missing:
        raise TeacherOutputsError(f"{source}: no teacher output for {len(missing)} example ids, e.g. {missing[:3]}")
    if teacher_outputs.data_fingerprint != data.fingerprint():
        raise TeacherOutputsError(f"{source}: computed on different {task.name} training data (fingerprint "
                                  f"{teacher_outputs.data_fingerprint[:12]}…, this data {data.fingerprint()[:12]}…; "
                                  "other files or another --max_train_examples?): train teachers on this data in a "
                                  "new --model_dir, or give the data those teachers saw")
    return outputs[[row_of_id[example_id] for example_id in data.ids]]
