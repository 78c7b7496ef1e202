"""MultiTaskBert as a Keras-native model: model.save("m.keras") and keras.saving.load_model round-trip, with
GLUE and user tasks; a garbled config is an InputError naming the key, never a silent default."""

import json
import zipfile

import keras
import keras_hub
import numpy as np
import pytest

from bam_tf import task_defs
from bam_tf.task_set import glue_task
from bam_tf.model import DistillationSettings, MultiTaskBert, build_model
from bam_tf.user_errors import InputError

# Not registered anywhere: a model must carry its user tasks itself.
USER_DEFINITIONS = {"tasks": [
    {"name": "tone", "files": {"train": "train.jsonl", "dev": "dev.jsonl"}, "text_a": "t", "label": "y",
     "labels": ["low", "mid", "high"], "metrics": ["accuracy", "mcc"]},
    {"name": "rating", "files": {"train": "r.tsv", "dev": "r.tsv"}, "text_a": 0, "text_b": 1, "label": 2,
     "regression": {"min": 1, "max": 10}, "metrics": ["pearson"]},
]}
DISTILLATION = DistillationSettings(total_steps=40, teacher_annealing=False, distill_weight=0.3, temperature=2.0)


def _user_tasks(tmp_path):
    return task_defs.tasks_from_definitions(USER_DEFINITIONS, source="defs.yaml", base_dir=str(tmp_path),
                                            check_files=False)


def _model(tasks, seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=64, dtype="float32")
    model = MultiTaskBert(backbone, tasks, DISTILLATION, head_dropout=0.2, loss_reduction="mean", dtype="float32")
    build_model(model)
    return model


def _features():
    rng = np.random.default_rng(0)
    lengths = np.array([9, 4, 1, 7])
    mask = np.arange(9)[None, :] < lengths[:, None]
    return {"token_ids": np.where(mask, rng.integers(1, 100, (4, 9)), 0).astype(np.int32),
            "segment_ids": (mask & (np.arange(9)[None, :] >= 3)).astype(np.int32), "padding_mask": mask}


def _outputs(model):
    return {name: value.numpy() for name, value in model.inference_outputs(_features()).items()}


def _saved_and_loaded(model, path):
    model.save(str(path))
    return keras.saving.load_model(str(path))


def test_glue_and_user_tasks_round_trip_through_a_keras_file(tmp_path):
    tasks = [glue_task("RTE"), glue_task("STS-B"), glue_task("SST-2"), *_user_tasks(tmp_path)]
    model = _model(tasks)
    model.batches_done.assign(7)
    loaded = _saved_and_loaded(model, tmp_path / "student.keras")

    assert isinstance(loaded, MultiTaskBert)
    assert [t.name for t in loaded.tasks] == ["RTE", "STS-B", "SST-2", "tone", "rating"]
    assert loaded.tasks[:3] == tasks[:3]  # the GLUE table's own task objects
    for before, after in zip(tasks[3:], loaded.tasks[3:]):
        assert after.is_user_task
        assert task_defs.definition_of(after) == task_defs.definition_of(before)
    assert (loaded.distillation, loaded.head_dropout.rate, loaded.loss_reduction) == (DISTILLATION, 0.2, "mean")
    assert int(loaded.batches_done.numpy()) == 7

    expected, actual = _outputs(model), _outputs(loaded)
    assert sorted(actual) == sorted(expected)
    for name in expected:
        assert actual[name].dtype == np.float32
        np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    # Not the same by accident: another seed's model differs.
    assert not np.allclose(_outputs(_model(tasks, seed=1))["RTE"], expected["RTE"], atol=1e-3)


def test_loading_registers_no_user_task(tmp_path):
    loaded = _saved_and_loaded(_model([glue_task("RTE"), *_user_tasks(tmp_path)]), tmp_path / "m.keras")
    assert [t.name for t in loaded.tasks] == ["RTE", "tone", "rating"]
    with pytest.raises(InputError, match="Unknown GLUE task 'tone'"):
        glue_task("tone")


def test_config_is_json_and_round_trips(tmp_path):
    model = _model([glue_task("CoLA"), *_user_tasks(tmp_path)])
    config = json.loads(json.dumps(model.get_config()))
    again = MultiTaskBert.from_config(config)
    assert again.get_config() == config


def _config(tmp_path):
    return _model([glue_task("RTE"), *_user_tasks(tmp_path)]).get_config()


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(head_dropuot=0.3), r"unknown key\(s\) 'head_dropuot'; valid keys: backbone, tasks, "),
    (lambda c: c.pop("loss_reduction"), r"missing key\(s\) 'loss_reduction'"),
    (lambda c: c.pop("user_tasks"), r"missing key\(s\) 'user_tasks'"),
    (lambda c: c.update(tasks=["RTE", "nope", "tone", "rating"]),
     r"tasks\[1\]: 'nope' is neither a GLUE task \(CoLA, .*\) nor defined in user_tasks"),
    (lambda c: c.update(tasks=[]), r"tasks: expected a non-empty list of task names"),
    (lambda c: c.update(tasks=["RTE", "RTE", "tone", "rating"]), r"tasks: a task is listed twice"),
    (lambda c: c.update(tasks=["RTE", "tone"]), r"user_tasks defines rating, which tasks does not list"),
    (lambda c: c["user_tasks"][0].update(labels=["low"]),
     r"user_tasks: tasks\[0\]\.labels: expected a list of at least 2 label strings"),
    (lambda c: c["distillation"].update(temprature=2.0),
     r"distillation: expected a mapping with exactly the keys total_steps, teacher_annealing, distill_weight, "
     r"temperature, found"),
    (lambda c: c.update(backbone="bert"), r"backbone: expected a serialized keras-hub backbone, found 'bert'"),
])
def test_a_garbled_config_is_an_input_error_naming_the_key(tmp_path, change, message):
    config = _config(tmp_path)
    change(config)
    with pytest.raises(InputError, match=r"^MultiTaskBert config: " + message):
        MultiTaskBert.from_config(config)


def test_a_garbled_keras_file_fails_loudly(tmp_path):
    path = tmp_path / "m.keras"
    _model([glue_task("RTE")]).save(str(path))
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["head_droput"] = config["config"].pop("head_dropout")
    files["config.json"] = json.dumps(config).encode()
    garbled = tmp_path / "garbled.keras"
    with zipfile.ZipFile(garbled, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(InputError, match=r"unknown key\(s\) 'head_droput'; missing key\(s\) 'head_dropout'"):
        keras.saving.load_model(str(garbled))


def test_a_model_compiled_for_training_saves_and_loads_with_its_optimizer(tmp_path):
    """Its settings and schedule come back (not its moments: Keras warns and starts them afresh)."""
    from bam_tf.optimizer import BertAdamW, create_optimizer

    model = _model([glue_task("RTE")])
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-4, total_steps=10, num_layers=1,
                                             layerwise_lr_decay=0.8, clip_global_norm=1.0,
                                             schedule_step=model.batches_done))
    model.save(tmp_path / "compiled.keras")
    with pytest.warns(UserWarning, match="Skipping variable loading for optimizer"):  # the moments, as said
        again = keras.saving.load_model(tmp_path / "compiled.keras")
    assert isinstance(again.optimizer, BertAdamW)
    settings = ("num_layers", "layerwise_lr_decay", "clip_global_norm", "bias_correction", "weight_decay")
    assert {k: getattr(again.optimizer, k) for k in settings} == {k: getattr(model.optimizer, k) for k in settings}
    assert again.optimizer._learning_rate.get_config() == model.optimizer._learning_rate.get_config()
