"""Tests for bam_tf.trained_model: a saved model folder loads back, and old-scale regression heads are refused."""

import json
import os

import numpy as np
import pytest

from bam_tf.backbone import load_backbone
from bam_tf.task_set import GLUE, TaskSet
from bam_tf.model import MultiTaskBert
from bam_tf.text_encoding import TextEncoder
from bam_tf.trained_model import build_model, load_trained_model, save_trained_model

SPEC = "random:layers=1,hidden=16,heads=2,intermediate=32"


def _saved(tmp_path, task_names, task_set=GLUE):
    loaded = load_backbone(SPEC)
    model = MultiTaskBert(loaded.backbone, [task_set.get(n) for n in task_names])
    build_model(model)
    directory = str(tmp_path / "model")
    save_trained_model(directory, model, TextEncoder(loaded.tokenizer, 32), SPEC)
    return directory, model


def test_round_trip_keeps_the_heads(tmp_path):
    directory, model = _saved(tmp_path, ["RTE", "STS-B"])
    with open(os.path.join(directory, "model_config.json"), encoding="utf-8") as f:
        assert json.load(f)["format_version"] == 2
    again, encoder = load_trained_model(directory)
    assert encoder.max_seq_length == 32
    for name in ("RTE", "STS-B"):
        for a, b in zip(again.heads[name].get_weights(), model.heads[name].get_weights()):
            np.testing.assert_array_equal(a, b)


def _drop_format_version(directory):
    path = os.path.join(directory, "model_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    del config["format_version"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f)


def test_an_older_model_with_a_0_to_5_regression_head_is_refused(tmp_path):
    directory, _ = _saved(tmp_path, ["RTE", "STS-B"])
    _drop_format_version(directory)  # as bam_tf wrote it when STS-B trained on 0–5
    with pytest.raises(ValueError, match=r"model: trained by an older bam_tf whose STS-B head predicts the 0–5 "
                                         r"label scale; heads now train on scores scaled to \[0, 1\]"):
        load_trained_model(directory)


def test_an_older_classification_only_model_still_loads(tmp_path):
    directory, _ = _saved(tmp_path, ["RTE"])
    _drop_format_version(directory)
    model, _ = load_trained_model(directory)
    assert [t.name for t in model.tasks] == ["RTE"]


def test_a_user_task_model_loads_without_its_definition_file(tmp_path):
    from bam_tf import task_defs

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.jsonl").write_text('{"t": "a", "y": "low"}\n')
    definition = tmp_path / "d" / "tasks.yaml"
    definition.write_text("tasks:\n  - {name: tone, files: {train: train.jsonl, dev: train.jsonl}, text_a: t, "
                          "label: y, labels: [low, mid, high], metrics: [accuracy, mcc]}\n")
    directory, model = _saved(tmp_path, ["tone", "RTE"], TaskSet(task_defs.load_task_definitions(str(definition))))
    os.remove(definition)  # a fresh process: only the model folder
    again, _ = load_trained_model(directory)
    tone = again.tasks[0]
    assert (tone.name, tone.labels, tone.metrics, tone.is_pair) == ("tone", ("low", "mid", "high"),
                                                                    ("accuracy", "mcc"), False)
    assert tone.definition_file == os.path.join(directory, "model_config.json")
    np.testing.assert_array_equal(again.heads["tone"].get_weights()[0], model.heads["tone"].get_weights()[0])
    with pytest.raises(ValueError, match="Unknown GLUE task 'tone'"):
        GLUE.get("tone")  # loading a model defines nothing for anyone else

    # A run whose --task_defs defines the same name with another head refuses the folder.
    definition.write_text("tasks:\n  - {name: tone, files: {train: train.jsonl, dev: train.jsonl}, text_a: t, "
                          "label: y, labels: [low, high], metrics: [accuracy]}\n")
    other = TaskSet(task_defs.load_task_definitions(str(definition)))
    with pytest.raises(ValueError, match=r"model_config.json: this model's tone head was trained with labels "
                                         r"\['low', 'mid', 'high'\] on single sentences, but .*tasks.yaml "
                                         r"defines tone with labels \['low', 'high'\]"):
        load_trained_model(directory, other)
    # The same head defined by the run: the run's definition (where its data lies) is used.
    definition.write_text("tasks:\n  - {name: tone, files: {train: train.jsonl, dev: train.jsonl}, text_a: t, "
                          "label: y, labels: [low, mid, high], metrics: [accuracy]}\n")
    same_head = TaskSet(task_defs.load_task_definitions(str(definition)))
    again, _ = load_trained_model(directory, same_head)
    assert again.tasks[0] is same_head.get("tone") and again.tasks[0].metrics == ("accuracy",)


def test_a_damaged_model_config_is_an_input_error_naming_the_file(tmp_path):
    from bam_tf.user_errors import InputError

    directory, _ = _saved(tmp_path, ["RTE"])
    path = os.path.join(directory, "model_config.json")
    with open(path, "r+", encoding="utf-8") as f:
        f.truncate(20)  # a half-written file
    with pytest.raises(InputError, match=r"model_config\.json: not valid JSON .*the model folder is damaged"):
        load_trained_model(directory)
