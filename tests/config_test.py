"""Tests for bam_tf.config: strict dict loading, validation, and the flags.txt round trip through absl."""

import dataclasses
import json

import pytest
from absl import flags

from bam_tf.config import (FLAGS_FREE_TO_CHANGE, PATH_FLAGS, BamConfig, changed_flag_names, config_from_flags,
                           define_flags, describe_flag_changes)


def _valid(**overrides):
    return BamConfig(**{"model_dir": "/runs/x", "glue_dir": "/data/glue", **overrides})


def _fresh_flags():
    fv = flags.FlagValues()
    define_flags(fv)
    return fv


# ---- from_dict / from_json_file -----------------------------------------------------------------

def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ValueError) as info:
        BamConfig.from_dict({"model_dir": "/x", "modeldir": "/y", "learnig_rate": 1.0})
    message = str(info.value)
    assert "unknown config keys ['learnig_rate', 'modeldir']" in message
    assert "valid keys" in message and "'learning_rate'" in message


def test_from_dict_accepts_known_keys_and_keeps_defaults():
    config = BamConfig.from_dict({"model_dir": "/x", "train_batch_size": 64})
    assert config.model_dir == "/x" and config.train_batch_size == 64
    assert config.learning_rate == 1e-4 and config.task_weight_exponent == 0.75  # untouched defaults


def test_from_json_file_names_the_file_on_error(tmp_path):
    good = tmp_path / "config.json"
    good.write_text(json.dumps(_valid(seed=7).to_dict()))
    assert BamConfig.from_json_file(str(good)) == _valid(seed=7)
    bad = tmp_path / "typo.json"
    bad.write_text(json.dumps({"model_dir": "/x", "sead": 1}))
    with pytest.raises(ValueError, match=r"typo\.json: unknown config keys \['sead'\]"):
        BamConfig.from_json_file(str(bad))


# ---- validate -------------------------------------------------------------------------------------

def test_valid_configs_pass():
    _valid().validate()
    _valid(teacher_annealing=False, distill_weight=0.3).validate()
    _valid(distill=False, mode="student").validate()
    _valid(data_source="tfds", glue_dir="").validate()  # tfds needs no glue_dir


def _problems(config):
    with pytest.raises(ValueError) as info:
        config.validate()
    return str(info.value)


def test_missing_model_dir():
    assert "--model_dir is required" in _problems(BamConfig(glue_dir="/data/glue"))


def test_missing_glue_dir_with_tsv():
    assert "--glue_dir (or $GLUE_DIR) is required" in _problems(BamConfig(model_dir="/x"))


def test_a_task_of_ones_own_without_task_defs_is_named_not_glue_dir():
    # With neither --glue_dir nor --task_defs, "sentiment3" is the problem: asking for GLUE data would mislead.
    message = _problems(BamConfig(model_dir="/x", tasks="sentiment3"))
    assert "--tasks: Unknown GLUE task 'sentiment3'" in message and "needs --task_defs=FILE" in message
    assert "--glue_dir" not in message
    # A GLUE task beside it needs GLUE data as well: both problems at once, not one per attempt.
    message = _problems(BamConfig(model_dir="/x", tasks="RTE,MRCP"))
    assert "--tasks: Unknown GLUE task 'MRCP'" in message and "--glue_dir (or $GLUE_DIR) is required" in message


def test_task_defs_without_tasks_or_glue_dir_asks_for_tasks():
    message = _problems(BamConfig(model_dir="/x", task_defs="mine.yaml"))
    assert "--tasks is left at its default (CoLA,SST-2" in message and "e.g. --tasks=<a task of mine.yaml>" in message
    BamConfig(model_dir="/x", task_defs="mine.yaml", tasks="paraphrase").validate()  # user tasks need no GLUE


def test_distill_weight_with_annealing_on():
    assert "--distill_weight only applies with --noteacher_annealing" in _problems(_valid(distill_weight=0.3))


@pytest.mark.parametrize("name", ["train_batch_size", "teacher_batch_size", "eval_batch_size", "max_seq_length"])
@pytest.mark.parametrize("value", [0, -4])
def test_nonpositive_sizes(name, value):
    assert f"--{name} must be positive" in _problems(_valid(**{name: value}))


@pytest.mark.parametrize("overrides", [{"temperature": 2.0}, {"teacher_annealing": False},
                                       {"teacher_annealing": False, "distill_weight": 0.2}])
def test_distill_only_flags_with_nodistill(overrides):
    assert "--teacher_annealing/--distill_weight/--temperature need --distill" in _problems(
        _valid(distill=False, **overrides))


def test_predict_mode_with_nodistill():
    assert "--mode=predict writes teacher outputs" in _problems(_valid(distill=False, mode="predict"))


def test_task_weight_exponent_may_be_zero_but_not_negative():
    assert "--task_weight_exponent must be 0 (uniform over tasks) or positive" in _problems(
        _valid(task_weight_exponent=-1.0))
    _valid(task_weight_exponent=0.0).validate()  # uniform over tasks: valid
    assert "--task_weight_exponent must be 0 (uniform over tasks) or positive and finite" in _problems(
        _valid(task_weight_exponent=float("inf")))


@pytest.mark.parametrize("name", ["num_train_epochs", "teacher_epochs", "learning_rate", "temperature"])
@pytest.mark.parametrize("value", [0.0, float("inf"), float("nan")])
def test_rates_and_epochs_must_be_positive_and_finite(name, value):
    assert f"--{name} must be positive and finite" in _problems(_valid(**{name: value}))


@pytest.mark.parametrize("name", ["weight_decay", "clip_global_norm"])
def test_decay_and_clipping_may_be_off_but_not_negative_or_infinite(name):
    _valid(**{name: 0.0}).validate()  # off
    for value in (-1.0, float("inf"), float("nan")):
        assert f"--{name} must be 0 (off) or positive and finite" in _problems(_valid(**{name: value}))


def test_a_seed_is_what_numpy_and_keras_can_seed_with():
    _valid(seed=0).validate()
    _valid(seed=2**32 - 1).validate()
    for seed in (-1, 2**32):
        assert f"--seed must be in [0, 2^32), got {seed}" in _problems(_valid(seed=seed))


def test_range_checks_and_all_problems_reported_together():
    message = _problems(BamConfig(glue_dir="/g", learning_rate=0.0, warmup_fraction=1.5, layerwise_lr_decay=0.0,
                                  max_train_steps=-1))
    for fragment in ("--model_dir is required", "--learning_rate must be positive",
                     "--warmup_fraction must be in [0, 1]", "--layerwise_lr_decay must be in (0, 1]",
                     "--max_train_steps must be 0 (no cap) or positive"):
        assert fragment in message
    assert message.startswith("invalid flags:")


# ---- flags ------------------------------------------------------------------------------------

ROUND_TRIP_CONFIGS = [
    _valid(),  # every default, as flags.txt of a default run
    _valid(mode="student", tasks="RTE,STS-B", backbone="random:layers=2,hidden=32", max_seq_length=64,
           swap_pair_order=False, teacher_annealing=False, distill_weight=0.3, temperature=2.0,
           task_mixing="per_task", learning_rate=3e-5, num_train_epochs=0.5, max_train_steps=17, seed=42,
           clip_global_norm=0.0, precision="mixed_bfloat16"),
    _valid(distill=False, mode="all", max_train_examples=100, layerwise_lr_decay=1.0),
]


@pytest.mark.parametrize("config", ROUND_TRIP_CONFIGS)
def test_flagfile_round_trip(config, tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    path = tmp_path / "flags.txt"
    path.write_text(config.to_flagfile_text())
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={path}"])
    restored = config_from_flags(fv)
    assert restored == config
    # every field is written, so a later change of defaults cannot change a resumed run
    assert len(path.read_text().splitlines()) == len(dataclasses.fields(BamConfig))


def test_flagfile_with_empty_strings_round_trips(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    config = _valid(data_source="tfds", glue_dir="", tfds_data_dir="")
    path = tmp_path / "flags.txt"
    path.write_text(config.to_flagfile_text())
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={path}"])
    assert config_from_flags(fv) == config


def test_command_line_overrides_the_flagfile(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    path = tmp_path / "flags.txt"
    path.write_text(_valid().to_flagfile_text())
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={path}", "--mode=evaluate", "--seed=3"])
    assert config_from_flags(fv) == _valid(mode="evaluate", seed=3)


def test_the_run_folders_flagfile_continues_every_stage_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config = _valid(mode="evaluate", model_dir="runs/a", glue_dir="../glue", task_defs="defs/tasks.yaml",
                    backbone="random:layers=2,hidden=32,heads=2,intermediate=64", seed=4)
    (tmp_path / "flags.txt").write_text(config.to_rerun_flagfile_text())
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={tmp_path / 'flags.txt'}"])
    assert config_from_flags(fv) == dataclasses.replace(
        config, mode="all", model_dir=str(tmp_path / "runs" / "a"), glue_dir=str(tmp_path.parent / "glue"),
        task_defs=str(tmp_path / "defs" / "tasks.yaml"))


def test_a_flagfiles_paths_may_start_with_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "my.flags"
    path.write_text("--model_dir=~/runs/a\n--glue_dir=~/glue_data\n--task_defs=~/defs.yaml\n")
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={path}"])
    config = config_from_flags(fv)
    assert (config.model_dir, config.glue_dir, config.task_defs) == (
        f"{tmp_path}/runs/a", f"{tmp_path}/glue_data", f"{tmp_path}/defs.yaml")


def test_a_local_backbone_folder_is_recorded_absolute_so_flags_txt_works_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    for folder in ("runs/old/student/backbone", "home/models/bert", "all-MiniLM-L6-v2"):
        (tmp_path / folder).mkdir(parents=True)

    def backbone_given(value):
        fv = _fresh_flags()
        fv(["prog", "--model_dir=runs/new", "--glue_dir=/glue", f"--backbone={value}"])
        return config_from_flags(fv).backbone

    assert backbone_given("runs/old/student/backbone") == str(tmp_path / "runs/old/student/backbone")
    assert backbone_given("~/models/bert") == str(tmp_path / "home/models/bert")
    # the packaged default, a random shape and a preset name are names, whatever folders lie here
    assert backbone_given("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert backbone_given("random:layers=1") == "random:layers=1"
    assert backbone_given("bert_tiny_en_uncased") == "bert_tiny_en_uncased"
    # a run that recorded the relative path (before this) is the same run, from the folder it was given in
    recorded, current = {"backbone": "runs/old/student/backbone"}, {"backbone": str(tmp_path / "runs/old/student/backbone")}
    assert changed_flag_names(recorded, current) == []
    assert changed_flag_names({"backbone": "random:layers=1"}, {"backbone": "random:layers=2"}) == ["backbone"]


def test_only_flags_a_run_may_change_are_rewritten_in_its_flagfile():
    # a rewritten flag that the run folder compares would make the folder refuse its own flags.txt (--backbone,
    # compared, is recorded absolute from the start: changed_flag_names matches older relative records)
    assert set(PATH_FLAGS) | {"mode"} <= FLAGS_FREE_TO_CHANGE


def test_unknown_flag_in_a_flagfile_is_rejected(tmp_path):
    path = tmp_path / "flags.txt"
    path.write_text(_valid().to_flagfile_text() + "--learnig_rate=0.1\n")
    fv = _fresh_flags()
    with pytest.raises(flags.UnrecognizedFlagError, match="learnig_rate"):
        fv(["prog", f"--flagfile={path}"])
    assert issubclass(flags.UnrecognizedFlagError, flags.Error)


def test_bad_choice_is_rejected_by_absl():
    fv = _fresh_flags()
    with pytest.raises(flags.IllegalFlagValueError):
        fv(["prog", "--task_mixing=shuffled"])


def test_config_from_flags_validates(monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    fv = _fresh_flags()
    fv(["prog", "--model_dir=/x", "--glue_dir=/g", "--train_batch_size=0"])
    with pytest.raises(ValueError, match="--train_batch_size must be positive"):
        config_from_flags(fv)


def test_glue_dir_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("GLUE_DIR", "/env/glue")
    fv = _fresh_flags()
    fv(["prog", "--model_dir=/x"])
    assert config_from_flags(fv).glue_dir == "/env/glue"
    fv = _fresh_flags()
    fv(["prog", "--model_dir=/x", "--glue_dir=/flag/glue"])
    assert config_from_flags(fv).glue_dir == "/flag/glue"


def test_every_field_has_a_flag_with_its_default():
    fv = _fresh_flags()
    fv(["prog"])
    for field in dataclasses.fields(BamConfig):
        assert fv[field.name].value == field.default, field.name
        assert fv[field.name].help


def test_jit_compile_is_auto_or_a_boolean_in_every_spelling(tmp_path, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    for argv, expected in ((["--jit_compile=auto"], "auto"), (["--jit_compile"], "true"),
                           (["--nojit_compile"], "false"), (["--jit_compile=false"], "false"), ([], "auto")):
        fv = _fresh_flags()
        fv(["prog", "--model_dir=/x", "--glue_dir=/g", *argv])
        assert config_from_flags(fv).jit_compile == expected, argv
    fv = _fresh_flags()
    with pytest.raises(flags.IllegalFlagValueError, match="expected auto, true or false"):
        fv(["prog", "--jit_compile=sometimes"])
    assert "--[no]jit_compile" in fv.get_help()
    # a flags.txt from before "auto" (--nojit_compile) still continues its run; so does its config.json
    path = tmp_path / "flags.txt"
    path.write_text(_valid().to_flagfile_text().replace("--jit_compile=auto", "--nojit_compile"))
    fv = _fresh_flags()
    fv(["prog", f"--flagfile={path}"])
    assert config_from_flags(fv).jit_compile == "false"
    assert BamConfig.from_dict({"model_dir": "/x", "jit_compile": False}).jit_compile == "false"
    assert BamConfig.from_dict({"model_dir": "/x", "jit_compile": True}).jit_compile == "true"
    with pytest.raises(ValueError, match="--jit_compile must be one of auto, true, false, got 'yes'"):
        _valid(jit_compile="yes").validate()


def test_a_recorded_config_without_dataset_multiples_ran_without_them(tmp_path):
    """Runs recorded before --dataset_multiples counted an epoch as the plain sum of the training sets."""
    recorded = _valid().to_dict()
    del recorded["dataset_multiples"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(recorded))
    assert BamConfig.from_json_file(str(path)).dataset_multiples is False
    assert BamConfig().dataset_multiples is True  # the original's default for new runs
    path.write_text(json.dumps(_valid(dataset_multiples=True).to_dict()))
    assert BamConfig.from_json_file(str(path)).dataset_multiples is True


def test_changed_flag_names_skips_ignored_and_one_sided_flags():
    recorded = {"seed": 0, "learning_rate": 1e-4, "log_every": 10, "old_only": 1}
    current = {"seed": 1, "learning_rate": 1e-4, "log_every": 50, "new_only": 2, "tasks": "RTE"}
    assert changed_flag_names(recorded, current) == ["log_every", "seed"]
    assert changed_flag_names(recorded, current, frozenset({"log_every"})) == ["seed"]
    assert changed_flag_names({}, current) == []


def test_task_lists_compare_as_the_tasks_they_name():
    # as --tasks is read: case, spaces and punctuation ignored, GLUE's aliases resolved; the order counts
    assert changed_flag_names({"tasks": "RTE,STS-B,paraphrase"}, {"tasks": "rte, sts_b,Para-phrase,"}) == []
    assert changed_flag_names({"tasks": "MNLI"}, {"tasks": "mnli-matched"}) == []
    assert changed_flag_names({"tasks": "RTE,STS-B"}, {"tasks": "STS-B,RTE"}) == ["tasks"]
    assert changed_flag_names({"tasks": "RTE"}, {"tasks": "RTE,CoLA"}) == ["tasks"]


def test_describe_flag_changes_shows_both_values_and_notes():
    recorded, current = {"seed": 0, "tasks": "RTE"}, {"seed": 1, "tasks": "CoLA"}
    assert describe_flag_changes(recorded, current, ["seed", "tasks"], {"seed": " (why)"}) == \
        "--seed: 0 → 1 (why), --tasks: 'RTE' → 'CoLA'"
    assert describe_flag_changes(recorded, current, []) == ""
