"""A trained model on disk: self-contained, so predict/evaluate/export need nothing but this folder.

  <dir>/backbone/          keras-hub preset of the fine-tuned backbone and its tokenizer (itself a valid
                           --backbone, e.g. for Multi→Multi teachers)
  <dir>/heads.npz          kernel and bias of each task head
  <dir>/model_config.json  tasks, max_seq_length, head dropout, where the backbone came from, and the
                           definitions of user tasks (--task_defs; so the folder loads in any process
                           without the definition file)

Written to a temporary sibling folder and renamed into place, so a crash never leaves half a model.
"""

import json
import os
import shutil
from collections.abc import Mapping

import keras_hub
import numpy as np

from bam_tf import atomic_files, task_defs
from bam_tf.model import MultiTaskBert, build_model
from bam_tf.task_set import GLUE, TaskSet
from bam_tf.text_encoding import TextEncoder
from bam_tf.user_errors import InputError, MissingInputError

MODEL_CONFIG = "model_config.json"
# 2: regression heads output the label scaled to [0, 1] (Task.training_targets). Folders without a
# format_version predate that and trained STS-B on 0–5: their regression heads are refused.
_FORMAT_VERSION = 2


def is_trained_model_dir(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, MODEL_CONFIG))


def save_trained_model(directory: str, model: MultiTaskBert, encoder: TextEncoder, backbone_source: str,
                       records: Mapping[str, dict] | None = None) -> None:
    """The model folder, written aside and renamed into place; `records` ({file name: JSON value}, e.g. the
    training summary and dev scores) go in with it, so a folder is never there without them."""
    directory = os.path.abspath(directory)
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.backbone.save_to_preset(os.path.join(tmp, "backbone"))
    encoder.tokenizer.save_to_preset(os.path.join(tmp, "backbone"))
    heads = {}
    for task in model.tasks:
        kernel, bias = model.heads[task.name].get_weights()
        heads[f"{task.name}/kernel"], heads[f"{task.name}/bias"] = kernel, bias
    np.savez(os.path.join(tmp, "heads.npz"), **heads)
    config = {"format_version": _FORMAT_VERSION, "tasks": [t.name for t in model.tasks], "max_seq_length": encoder.max_seq_length,
              "head_dropout": model.head_dropout.rate, "backbone_source": backbone_source,
              "user_tasks": [task_defs.definition_of(t) for t in model.tasks if t.is_user_task]}
    with open(os.path.join(tmp, MODEL_CONFIG), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    for name, value in (records or {}).items():
        atomic_files.write_json(os.path.join(tmp, name), value)
    atomic_files.replace_directory(tmp, directory)


def load_trained_model(directory: str, task_set: TaskSet = GLUE) -> tuple[MultiTaskBert, TextEncoder]:
    """The model and text encoder a folder holds. Its user tasks come from the folder itself, unless
    `task_set` (the loading run's tasks) defines them too: then the run's definition is used, if it
    describes the same head (else an InputError)."""
    config_path = os.path.join(directory, MODEL_CONFIG)
    if not os.path.exists(config_path):
        raise MissingInputError(f"{directory}: not a trained bam_tf model (no {MODEL_CONFIG})")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # a damaged folder: input, not a bug
        raise InputError(f"{config_path}: not valid JSON ({error}); the model folder is damaged") from error
    task_set = task_set.with_stored(task_defs.stored_tasks(config.get("user_tasks", []), config_path), config_path)
    tasks = [task_set.get(name) for name in config["tasks"]]
    backbone_dir = os.path.join(directory, "backbone")
    backbone = keras_hub.models.BertBackbone.from_preset(backbone_dir)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(backbone_dir)
    old_scale = [t.name for t in tasks if config.get("format_version", 1) < t.first_usable_format]
    if old_scale:
        raise InputError(f"{directory}: trained by an older bam_tf whose {', '.join(old_scale)} head predicts "
                         "the 0–5 label scale; heads now train on scores scaled to [0, 1]. Delete the folder "
                         "and train it again")
    model = MultiTaskBert(backbone, tasks, head_dropout=config["head_dropout"])
    encoder = TextEncoder(tokenizer, config["max_seq_length"])
    build_model(model)
    with np.load(os.path.join(directory, "heads.npz"), allow_pickle=False) as heads:
        for task in tasks:
            model.heads[task.name].set_weights([heads[f"{task.name}/kernel"], heads[f"{task.name}/bias"]])
    return model, encoder

