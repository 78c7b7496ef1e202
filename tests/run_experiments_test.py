"""bam_tf.experiments: plan, skip and resume logic with a fake backend (no training), the lock on the
experiment dir, and one real end-to-end smoke run (tiny random backbone, real GLUE slices) of
tools/run_experiments.py followed by tools/report.py."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from bam_tf.config import BamConfig
from bam_tf.experiments.experiment import Experiment, eval_task_names
from bam_tf.run_layout import DEV_RESULTS, TRAINING_SUMMARY, RunLayout
from bam_tf.glue_tasks import TASKS as GLUE_TASKS
from bam_tf.task_defs import run_record
from bam_tf.task_set import GLUE, task_set_of
from bam_tf.experiments.methods import METHODS
from bam_tf.experiments.results_file import ExperimentError, append_results, read_results
from bam_tf.run_lock import RunDirBusyError, exclusive_file, exclusive_run_dir
from bam_tf.teacher_outputs import TeacherOutputs, load_teacher_outputs, save_teacher_outputs
from bam_tf.user_errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE_DIR = os.environ.get("GLUE_DIR", "")
TASKS = ["CoLA", "STS-B"]
WIDTH = {"CoLA": 2, "STS-B": 1}
ALL_METHODS = list(METHODS)


class Killed(Exception):
    """Stands in for a kill in the middle of a run."""


class FakeBackend:
    """Writes what BamPipeline would write (model folders, dev results, teacher outputs), instantly.

    Like BamPipeline it keeps what is already trained; `trained` lists what it really trained."""

    def __init__(self, kill_at=None):
        self.kill_at = kill_at  # (mode, model_dir suffix): raise Killed when asked to run that
        self.trained = []  # ("teacher", seed, task) or ("student", model_dir)
        self.calls = []

    def run_pipeline(self, config, also_predict=False):
        self.calls.append((config.mode, config.model_dir))
        layout = RunLayout(config.model_dir)
        os.makedirs(config.model_dir, exist_ok=True)
        with open(layout.config_path, "w") as f:
            json.dump(config.to_dict(), f)  # as BamPipeline does before its first stage
        if config.task_defs:  # and the definitions of the user's own tasks it trains
            tasks = task_set_of(config.task_defs).parse_list(config.tasks)
            if any(task.is_user_task for task in tasks):
                with open(layout.task_defs_record, "w") as f:
                    json.dump(run_record(tasks, config.task_defs), f)
        if self.kill_at and config.mode == self.kill_at[0] and config.model_dir.endswith(self.kill_at[1]):
            raise Killed(config.model_dir)
        tasks = config.tasks.split(",")
        if config.mode == "teachers":
            for task in tasks:
                teacher = layout.teacher_dir(task)
                if not os.path.exists(os.path.join(teacher, "model_config.json")):
                    self.trained.append(("teacher", config.seed, task))
                    self._write_model(teacher, [task], score=0.1 + 0.01 * config.seed)
            if also_predict:
                self._predict(config, tasks, layout.teacher_outputs_dir)
        elif config.mode == "predict":
            self._predict(config, tasks, layout.teacher_outputs_dir)
        elif config.mode == "student":
            student = layout.student_dir
            if config.distill:
                for task in tasks:  # BamPipeline refuses to train without them
                    load_teacher_outputs(layout.teacher_outputs_path(task))
            if not os.path.exists(os.path.join(student, "model_config.json")):
                self.trained.append(("student", config.model_dir))
                method = os.path.relpath(config.model_dir, os.path.dirname(os.path.dirname(config.model_dir)))
                base = {"single": 0.1, "multi": 0.2, "bam": 0.3}.get(method.split(os.sep)[0], 0.25)
                self._write_model(student, tasks, score=base + 0.01 * config.seed)
        else:
            raise AssertionError(config.mode)

    def write_teacher_outputs(self, config, teacher_dir, output_dir):
        assert os.path.exists(os.path.join(teacher_dir, "model_config.json")), teacher_dir
        self.calls.append(("write_teacher_outputs", teacher_dir))
        self._predict(config, config.tasks.split(","), output_dir, value=7.0)

    def dev_results(self, config, model_dir):
        raise AssertionError("not needed in these tests")

    def train_sizes(self, config):
        return {task: 4 for task in config.tasks.split(",")}

    def train_fingerprint(self, config, task):
        return f"fingerprint-{task}"  # what _predict writes: the data never changes here

    def _predict(self, config, tasks, out_dir, value=None):
        for task in tasks:
            outputs = np.full((4, WIDTH.get(task, 2)), float(config.seed if value is None else value), np.float32)
            save_teacher_outputs(os.path.join(out_dir, f"{task}.npz"), TeacherOutputs(
                task, np.array([f"train-{i}" for i in range(4)]), outputs, f"fingerprint-{task}"))

    @staticmethod
    def _write_model(directory, tasks, score):
        os.makedirs(directory, exist_ok=True)
        scores = {t: ({"mcc": score} if t == "CoLA" else {"pearson": score, "spearman": score}) for t in tasks}
        for name, value in [(DEV_RESULTS, {"tasks": scores}),
                            (TRAINING_SUMMARY, {"steps": 12, "precision": "float32", "device": "CPU fake", "segments": [
                                {"from_step": 1, "precision": "mixed_bfloat16", "device": "CPU fake"},
                                {"from_step": 7, "precision": "float32", "device": "CPU fake"}]}),
                            ("model_config.json", {"tasks": tasks})]:
            with open(os.path.join(directory, name), "w") as f:
                json.dump(value, f)


def make_experiment(tmp_path, methods=("single", "multi", "bam"), seeds=(0,), backend=None, store="", **flags):
    if "glue_dir" not in flags:  # the runner checks that the files are there; FakeBackend never reads them
        flags["glue_dir"] = str(_glue_file_names(tmp_path / "glue"))
    base = BamConfig(**{"model_dir": str(tmp_path / "exp"), "tasks": ",".join(TASKS), **flags})
    lines = []
    experiment = Experiment(base, list(methods), list(seeds), str(tmp_path / "exp"),
                            str(tmp_path / "results.jsonl"), backend=backend or FakeBackend(),
                            out=lines.append, teacher_outputs_store=store)
    experiment.printed = lines
    return experiment


def result_keys(path):
    records, warning = read_results(str(path))
    return [(r["method"], r["seed"], r["task"]) for r in records], warning


def line(method, seed, task, score=0.5, flags=None):
    return json.dumps({"method": method, "seed": seed, "task": task, "metrics": {"m": score}, "score": score,
                       "flags": flags or {}}) + "\n"


def test_plan_skips_complete_pairs_reruns_incomplete_ones_and_tolerates_a_truncated_line(tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text(line("single", 0, "CoLA", 0.123) + line("single", 0, "STS-B", 0.456)
                       + line("multi", 0, "CoLA", 0.789)  # multi seed 0 lacks STS-B: incomplete
                       + '{"method": "bam", "seed": 0, "task": "Co')  # cut off by a kill
    experiment = make_experiment(tmp_path)
    items, warning = experiment.plan()
    assert "truncated last line" in warning
    assert [(str(i.key), i.done) for i in items] == [("single seed 0", True), ("multi seed 0", False),
                                                     ("bam seed 0", False)]
    assert "1 of 2 task lines recorded" in items[1].detail

    experiment.run()
    keys, warning = result_keys(results)
    assert warning is None  # the broken tail was dropped before appending
    assert sorted(keys) == sorted({(m, 0, t) for m in ("single", "multi", "bam") for t in TASKS})
    assert len(keys) == len(set(keys))  # nothing recorded twice
    records = {(r["method"], r["task"]): r for r in read_results(str(results))[0]}
    assert records[("single", "CoLA")]["score"] == 0.123  # complete runs were not redone
    assert records[("multi", "CoLA")]["score"] == 0.789
    assert any("dropped a truncated last line" in text for text in experiment.printed)
    # The multi model was trained (its STS-B line was missing); single was not re-recorded.
    assert ("student", experiment.run_dir("multi", 0)) in experiment.backend.trained


def test_teachers_are_trained_once_and_shared_by_every_method(tmp_path):
    experiment = make_experiment(tmp_path, methods=ALL_METHODS, seeds=(0, 1))
    experiment.run()
    backend = experiment.backend
    teachers = [entry for entry in backend.trained if entry[0] == "teacher"]
    assert sorted(teachers) == sorted(("teacher", s, t) for s in (0, 1) for t in TASKS)  # once each
    keys, _ = result_keys(tmp_path / "results.jsonl")
    assert sorted(keys) == sorted((m, s, t) for m in ALL_METHODS for s in (0, 1) for t in TASKS)
    # bam_ensemble comes after every other run (it needs every seed's teachers).
    assert [k[0] for k in keys[-4:]] == ["bam_ensemble"] * 4

    def outputs(method, seed, task, sub=""):
        return load_teacher_outputs(os.path.join(experiment.run_dir(method, seed), sub, "teacher_outputs",
                                                 f"{task}.npz"))
    for seed in (0, 1):
        for task in TASKS:
            single = outputs("single", seed, task)
            for method, sub in [("bam", ""), ("bam_no_anneal", ""), ("born_again_single", task)]:
                copied = outputs(method, seed, task, sub)
                np.testing.assert_array_equal(copied.outputs, single.outputs)  # the same seed's teachers
                np.testing.assert_array_equal(copied.example_ids, single.example_ids)
                assert copied.data_fingerprint == single.data_fingerprint
            ensemble = outputs("bam_ensemble", seed, task)
            np.testing.assert_allclose(ensemble.outputs, 0.5)  # mean of seed 0's 0.0 and seed 1's 1.0
            np.testing.assert_allclose(outputs("multi_to_multi", seed, task).outputs, 7.0)
    assert ("write_teacher_outputs", os.path.join(experiment.run_dir("multi", 0), "student")) in backend.calls

    # Per-run flags: distillation settings and born-again single-task hyper-parameters.
    records = read_results(str(tmp_path / "results.jsonl"))[0]
    flags = {(r["method"], r["task"]): r["flags"] for r in records}
    assert flags[("multi", "CoLA")]["distill"] is False
    # from training_summary.json's segments: each run resumed in another precision after step 6
    assert {(r["precision"], r["device"]) for r in records} == {
        ("mixed_bfloat16 for steps 1–6, float32 for steps 7–12", "CPU fake")}
    assert flags[("bam_no_anneal", "CoLA")]["teacher_annealing"] is False
    assert flags[("bam_no_anneal", "CoLA")]["distill_weight"] == 0.5
    born = flags[("born_again_single", "STS-B")]
    assert born["tasks"] == "STS-B" and born["learning_rate"] == born["teacher_learning_rate"]
    assert born["train_batch_size"] == born["teacher_batch_size"]

    # Running again does nothing at all.
    again = make_experiment(tmp_path, methods=ALL_METHODS, seeds=(0, 1))
    again.run()
    assert again.backend.calls == []
    assert f"{len(ALL_METHODS) * 2} done, 0 to do" in "\n".join(again.printed)


def test_an_ensemble_of_other_seeds_is_refused_not_mixed_into_the_grid(tmp_path):
    make_experiment(tmp_path, methods=("single", "bam_ensemble"), seeds=(0, 1)).run()
    records = read_results(str(tmp_path / "results.jsonl"))[0]
    assert {tuple(r["ensemble_seeds"]) for r in records if r["method"] == "bam_ensemble"} == {(0, 1)}
    assert all("ensemble_seeds" not in r for r in records if r["method"] == "single")
    # a third seed would average three seeds' teachers for it and two for the ensembles recorded
    with pytest.raises(ExperimentError, match=r"holds bam_ensemble seed 0 \(CoLA\), an ensemble of the teachers "
                                              r"of seeds 0, 1; --seeds is now 0, 1, 2"):
        make_experiment(tmp_path, methods=("single", "bam_ensemble"), seeds=(0, 1, 2)).plan()
    grown = make_experiment(tmp_path, methods=("single",), seeds=(0, 1, 2))  # the other methods may grow
    grown.run()
    assert ("teacher", 2, "CoLA") in grown.backend.trained
    # an ensemble started (outputs averaged) but not recorded is refused the same way
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records
                                                    if (r["method"], r["seed"]) != ("bam_ensemble", 1)))
    with pytest.raises(ExperimentError, match=r"ensemble_seeds.json records, an ensemble of the teachers of seeds "
                                              r"0, 1; --seeds is now 1, 2"):
        make_experiment(tmp_path, methods=("single", "bam_ensemble"), seeds=(1, 2)).plan()
    # from before bam_tf recorded an ensemble's seeds: outputs whose seeds are unknown are refused, lines warned
    os.remove(tmp_path / "exp" / "bam_ensemble" / "seed1" / "teacher_outputs" / "ensemble_seeds.json")
    with pytest.raises(ExperimentError, match=r"seed1/teacher_outputs holds outputs averaged before bam_tf recorded"):
        make_experiment(tmp_path, methods=("single", "bam_ensemble"), seeds=(0, 1)).run()
    (tmp_path / "results.jsonl").write_text("".join(
        json.dumps({k: v for k, v in r.items() if k != "ensemble_seeds"}) + "\n" for r in records))
    _, warning = make_experiment(tmp_path, methods=("single", "bam_ensemble"), seeds=(0, 1, 2)).plan()
    assert "bam_ensemble seed(s) 0, 1 were recorded before bam_tf noted which seeds" in warning


def test_a_killed_run_is_finished_in_its_own_model_dir_without_retraining_teachers(tmp_path):
    killer = FakeBackend(kill_at=("student", os.path.join("bam", "seed0")))
    with pytest.raises(Killed):
        make_experiment(tmp_path, backend=killer).run()
    keys, _ = result_keys(tmp_path / "results.jsonl")
    assert sorted(set(k[0] for k in keys)) == ["multi", "single"]

    experiment = make_experiment(tmp_path)
    items, _ = experiment.plan()
    assert [(str(i.key), i.done) for i in items] == [("single seed 0", True), ("multi seed 0", True),
                                                     ("bam seed 0", False)]
    assert "continues in" in items[2].detail
    experiment.run()
    # Only the bam student ran again, in the same model_dir (BamPipeline resumes from its checkpoint there).
    assert experiment.backend.calls == [("student", experiment.run_dir("bam", 0))]
    assert experiment.backend.trained == [("student", experiment.run_dir("bam", 0))]
    keys, _ = result_keys(tmp_path / "results.jsonl")
    assert len(keys) == len(set(keys)) == 6


def test_the_teacher_outputs_store_lets_bam_continue_without_the_experiment_dir_or_its_teachers(tmp_path):
    store = str(tmp_path / "store")
    killer = FakeBackend(kill_at=("student", os.path.join("bam", "seed1")))
    with pytest.raises(Killed):
        make_experiment(tmp_path, methods=("single", "bam"), seeds=(1,), backend=killer, store=store).run()
    # The single run kept its teachers' outputs in the store, with the teachers' flags, as soon as it had them.
    assert sorted(os.listdir(os.path.join(store, "seed1"))) == ["CoLA.npz", "STS-B.npz", "teacher_flags.json"]
    kept = json.load(open(os.path.join(store, "seed1", "teacher_flags.json")))
    assert kept["seed"] == 1 and kept["tasks"] == "CoLA,STS-B"
    written = {t: load_teacher_outputs(os.path.join(tmp_path, "exp", "single", "seed1", "teacher_outputs",
                                                    f"{t}.npz")) for t in TASKS}
    # Another machine: the results file and the store came along, the experiment dir (every model) did not.
    os.rename(tmp_path / "exp", tmp_path / "lost")
    experiment = make_experiment(tmp_path, methods=("single", "bam"), seeds=(1,), store=store)
    items, _ = experiment.plan()
    assert [(str(i.key), i.detail) for i in items] == [
        ("single seed 1", "done"), ("bam seed 1", f"to do (teacher outputs from {store}/seed1)")]
    experiment.run()
    assert experiment.backend.trained == [("student", experiment.run_dir("bam", 1))]  # no teacher again
    for task in TASKS:
        copied = load_teacher_outputs(os.path.join(experiment.run_dir("bam", 1), "teacher_outputs", f"{task}.npz"))
        np.testing.assert_array_equal(copied.outputs, written[task].outputs)
        assert copied.data_fingerprint == written[task].data_fingerprint
    assert any(f"outputs of CoLA, STS-B from {store}/seed1" in text for text in experiment.printed)
    keys, _ = result_keys(tmp_path / "results.jsonl")
    assert sorted(keys) == sorted((m, 1, t) for m in ("single", "bam") for t in TASKS)


def test_teacher_outputs_a_student_refuses_are_explained_for_a_grid(tmp_path):
    from bam_tf.teacher_outputs import TeacherOutputsError

    class DataChangedSinceTheTeachers(FakeBackend):
        def run_pipeline(self, config, also_predict=False):
            if config.mode == "student" and config.distill:
                raise TeacherOutputsError("CoLA.npz: computed on different CoLA training data (...): train teachers "
                                          "on this data in a new --model_dir, or give the data those teachers saw")
            super().run_pipeline(config, also_predict)

    experiment = make_experiment(tmp_path, methods=("single", "bam"), backend=DataChangedSinceTheTeachers())
    with pytest.raises(ExperimentError, match=r"(?s)computed on different CoLA training data.*\(in a grid, .*use "
                                              r"another --experiment_dir, --results_file and --teacher_outputs_store"):
        experiment.run()


def test_a_store_that_cannot_be_written_is_warned_about_not_a_stop(tmp_path, monkeypatch):
    from bam_tf.experiments import teacher_outputs_store

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(teacher_outputs_store.atomic_files, "write_json", read_only)
    experiment = make_experiment(tmp_path, methods=("single", "bam"), store=str(tmp_path / "store"))
    experiment.run()
    assert any(text.startswith(f"warning: seed 0's teacher outputs not kept in {tmp_path}/store/seed0: ")
               for text in experiment.printed)
    keys, _ = result_keys(tmp_path / "results.jsonl")
    assert sorted(keys) == sorted((m, 0, t) for m in ("single", "bam") for t in TASKS)


def test_outputs_written_before_the_store_was_given_are_kept_by_the_next_run_that_needs_them(tmp_path):
    killer = FakeBackend(kill_at=("student", os.path.join("bam", "seed0")))
    with pytest.raises(Killed):
        make_experiment(tmp_path, methods=("single", "bam"), backend=killer).run()
    store = tmp_path / "store"
    experiment = make_experiment(tmp_path, methods=("single", "bam"), store=str(store))
    experiment.run()
    assert experiment.backend.trained == [("student", experiment.run_dir("bam", 0))]
    assert sorted(os.listdir(store / "seed0")) == ["CoLA.npz", "STS-B.npz", "teacher_flags.json"]
    assert (store / "seed0" / "CoLA.npz").read_bytes() == (
        tmp_path / "exp" / "single" / "seed0" / "teacher_outputs" / "CoLA.npz").read_bytes()


def test_the_teacher_outputs_store_refuses_outputs_of_other_teachers(tmp_path):
    store = tmp_path / "store"
    make_experiment(tmp_path, methods=("single", "bam"), seeds=(0,), store=str(store)).run()
    assert (store / "seed0" / "CoLA.npz").exists()
    os.rename(tmp_path / "exp", tmp_path / "lost")
    os.remove(tmp_path / "results.jsonl")
    other = make_experiment(tmp_path, methods=("bam",), seeds=(0,), store=str(store), teacher_learning_rate=1e-5)
    for stage in (other.plan, other.run):  # a dry run says what the run would
        with pytest.raises(ExperimentError, match=r"teacher_flags.json: .*--teacher_learning_rate: 5e-05 → 1e-05"):
            stage()
    # outputs of these teachers, but on training data that has changed since: refused before they are copied,
    # so that the experiment dir does not keep them (every later run would stop on them)
    changed_data = FakeBackend()
    changed_data.train_fingerprint = lambda config, task: "fingerprint-of-edited-files"
    edited = make_experiment(tmp_path, methods=("bam",), seeds=(0,), store=str(store), backend=changed_data)
    with pytest.raises(ExperimentError, match=r"seed0/CoLA.npz: computed on other CoLA training data than this "
                                              r"experiment reads .*use another --teacher_outputs_store"):
        edited.run()
    assert not (tmp_path / "exp" / "single" / "seed0" / "teacher_outputs").exists()
    os.remove(store / "seed0" / "teacher_flags.json")
    same = make_experiment(tmp_path, methods=("bam",), seeds=(0,), store=str(store))
    with pytest.raises(ExperimentError, match="teacher_flags.json is missing"):
        same.run()


def test_a_store_serves_an_experiment_whose_flags_differ_only_in_what_teachers_never_use(tmp_path):
    store = tmp_path / "store"
    make_experiment(tmp_path, methods=("single", "bam"), seeds=(0,), store=str(store)).run()
    kept = json.load(open(store / "seed0" / "teacher_flags.json"))
    assert "task_loss_weights" not in kept and "dataset_multiples" not in kept and "learning_rate" not in kept
    assert kept["teacher_learning_rate"] == 5e-5
    os.rename(tmp_path / "exp", tmp_path / "lost")
    os.remove(tmp_path / "results.jsonl")
    weighted = make_experiment(tmp_path, methods=("bam", "born_again_single"), seeds=(0,), store=str(store),
                               task_loss_weights="STS-B=25", dataset_multiples=False, learning_rate=3e-4,
                               train_batch_size=64, num_train_epochs=2.0, temperature=2.0,
                               task_weight_exponent=0.5, task_mixing="per_task")
    weighted.run()
    assert [entry for entry in weighted.backend.trained if entry[0] == "teacher"] == []  # from the store
    flags = {(r["method"], r["task"]): r["flags"] for r in read_results(str(tmp_path / "results.jsonl"))[0]}
    assert flags[("bam", "CoLA")]["task_loss_weights"] == "STS-B=25"
    assert flags[("born_again_single", "CoLA")]["task_loss_weights"] == ""  # a run of CoLA alone


def test_the_runner_flags_reach_the_experiment(tmp_path):
    from absl import flags

    from bam_tf.experiments.runner_cli import define_runner_flags, experiment_from_flags
    flag_values = flags.FlagValues()
    define_runner_flags(flag_values)
    flag_values([
        "bam-experiments", "--tasks=CoLA,STS-B", "--methods=single,bam", "--seeds=3", "--glue_dir=/glue",
        f"--experiment_dir={tmp_path}/exp", f"--results_file={tmp_path}/r.jsonl",
        f"--teacher_outputs_store={tmp_path}/store"])
    experiment = experiment_from_flags(flag_values, backend=FakeBackend())
    assert experiment.methods == ["single", "bam"] and experiment.seeds == [3]
    assert experiment.store.seed_dir(3) == f"{tmp_path}/store/seed3"
    flag_values["teacher_outputs_store"].value = ""
    assert experiment_from_flags(flag_values, backend=FakeBackend()).store is None
    for seeds in (["1", "-1"], ["4294967296"]):  # numpy's and Keras' seeding take [0, 2^32): refused before a plan
        flag_values["seeds"].value = seeds
        with pytest.raises(ExperimentError, match=r"--seeds must be in \[0, 2\^32\)"):
            experiment_from_flags(flag_values, backend=FakeBackend())


def test_the_runners_paths_may_start_with_the_home_folder(tmp_path, monkeypatch):
    from absl import flags

    from bam_tf.experiments.runner_cli import define_runner_flags, experiment_from_flags
    monkeypatch.setenv("HOME", str(tmp_path))
    flagfile = tmp_path / "grid.flags"  # no shell expands ~ in a flagfile
    flagfile.write_text("--tasks=CoLA\n--methods=single\n--seeds=0\n--glue_dir=~/glue\n--experiment_dir=~/exp\n"
                        "--results_file=~/r.jsonl\n--teacher_outputs_store=~/store\n")
    flag_values = flags.FlagValues()
    define_runner_flags(flag_values)
    flag_values(["bam-experiments", f"--flagfile={flagfile}"])
    experiment = experiment_from_flags(flag_values, backend=FakeBackend())
    assert (experiment.base.glue_dir, experiment.base.model_dir) == (f"{tmp_path}/glue", f"{tmp_path}/exp")
    assert (experiment.experiment_dir, experiment.results_file) == (f"{tmp_path}/exp", f"{tmp_path}/r.jsonl")
    assert experiment.store.seed_dir(0) == f"{tmp_path}/store/seed0"


def test_results_from_other_flags_are_refused(tmp_path):
    make_experiment(tmp_path).run()
    # the first line refused is a student's: the teachers' (single) never read the student's flags
    with pytest.raises(ExperimentError, match=r"holds multi seed 0 \(CoLA\) from a run with other flags "
                                              r"\(--learning_rate: 0.0001 → 0.0002\)"):
        make_experiment(tmp_path, learning_rate=2e-4).plan()
    make_experiment(tmp_path, methods=("single",), learning_rate=2e-4).plan()
    make_experiment(tmp_path, log_every=7).plan()  # flags that change no result are fine
    make_experiment(tmp_path, tasks="cola, sts_b").plan()  # the same tasks, spelt otherwise
    with pytest.raises(ExperimentError, match="--teacher_learning_rate"):
        make_experiment(tmp_path, methods=("single",), teacher_learning_rate=1e-5).plan()


def test_teachers_and_students_of_other_flags_are_not_reused_by_another_method(tmp_path):
    make_experiment(tmp_path, methods=("single", "multi")).run()
    with pytest.raises(ExperimentError, match=r"single/seed0 holds seed 0's teachers trained with other flags "
                                              r"\(--teacher_learning_rate: 5e-05 → 1e-05\)"):
        make_experiment(tmp_path, methods=("bam",), teacher_learning_rate=1e-5).run()
    with pytest.raises(ExperimentError, match=r"multi/seed0 holds a student trained with other flags "
                                              r"\(--learning_rate: 0.0001 → 0.0002\)"):
        make_experiment(tmp_path, methods=("multi_to_multi",), learning_rate=2e-4).run()
    make_experiment(tmp_path, methods=("bam",), learning_rate=2e-4).run()  # teachers never use the student's flags


def test_the_plan_refuses_a_started_run_folder_of_other_flags_as_the_run_would(tmp_path):
    with pytest.raises(Killed):
        make_experiment(tmp_path, methods=("multi",), backend=FakeBackend(kill_at=("student", "multi/seed0"))).run()
    assert not (tmp_path / "results.jsonl").exists()  # nothing recorded: the plan alone must see the conflict
    with pytest.raises(ExperimentError, match=r"multi/seed0 holds a student trained with other flags "
                                              r"\(--learning_rate: 0.0001 → 0.0002\)"):
        make_experiment(tmp_path, methods=("multi",), learning_rate=2e-4).plan()
    items, _ = make_experiment(tmp_path, methods=("multi",)).plan()  # the same flags: it continues there
    assert [item.detail for item in items] == [f"to do (continues in {tmp_path / 'exp' / 'multi' / 'seed0'})"]


def test_the_plan_estimates_the_runs_to_do_from_the_finished_ones(tmp_path):
    make_experiment(tmp_path, methods=("single", "multi")).run()
    with open(tmp_path / "results.jsonl") as f:  # as if single took 30 min and multi 90
        records = [json.loads(row) for row in f]
    with open(tmp_path / "results.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps({**record, "wall_time_s": 1800 if record["method"] == "single" else 5400}) + "\n")
    experiment = make_experiment(tmp_path, methods=("single", "multi", "bam"), seeds=(0, 1, 2))
    experiment.print_plan()  # single 2 × 30 min + multi 2 × 90 min; bam never ran
    assert experiment.printed[-1] == (
        "  2 done, 7 to do; about 4.0 h for 4 of them at the median time of the finished whole runs of each method "
        "in the results file (less where a run continues; no timed run of bam yet)")


def test_check_data_names_the_first_missing_file(tmp_path):
    glue = tmp_path / "glue"
    for task in TASKS:
        (glue / GLUE_TASKS[task].directory).mkdir(parents=True)
        for name in ("train.tsv", "dev.tsv"):
            (glue / GLUE_TASKS[task].directory / name).touch()
    make_experiment(tmp_path, glue_dir=str(glue)).check_data()
    os.remove(glue / GLUE_TASKS[TASKS[-1]].directory / "dev.tsv")
    with pytest.raises(InputError, match=f"missing dev file for {TASKS[-1]}"):
        make_experiment(tmp_path, glue_dir=str(glue)).check_data()
    with pytest.raises(InputError, match="/glue: GLUE data directory does not exist"):
        make_experiment(tmp_path, glue_dir="/glue").run()  # before the first run: nothing written
    assert not (tmp_path / "results.jsonl").exists() and not (tmp_path / "exp").exists()
    make_experiment(tmp_path, glue_dir="/glue", backend=FakeBackend()).plan()  # a plan alone reads no data


def test_results_file_reading_and_appending(tmp_path):
    path = str(tmp_path / "r.jsonl")
    assert read_results(path) == ([], None)
    append_results(path, [json.loads(line("single", 0, "CoLA"))])
    with open(path, "a") as f:
        f.write('{"method": "sin')
    records, warning = read_results(path)
    assert len(records) == 1 and "truncated last line" in warning
    dropped = append_results(path, [json.loads(line("multi", 0, "CoLA"))])
    assert "dropped" in dropped
    records, warning = read_results(path)
    assert [r["method"] for r in records] == ["single", "multi"] and warning is None
    with open(path, "a") as f:
        f.write("not json\n" + line("bam", 0, "CoLA"))
    with pytest.raises(ExperimentError, match=":3: not a JSON line"):
        read_results(path)


def test_the_commit_is_dirty_for_changed_code_not_for_the_experiments_own_results(tmp_path, monkeypatch):
    from bam_tf.experiments import experiment

    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    (repo / "bam_tf").mkdir()
    git = lambda *args: subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                                       check=True, capture_output=True)
    git("init", "-q")
    for name in ("bam_tf/code.py", "results/grid.jsonl", "results/other.md"):
        (repo / name).write_text("x\n")
    git("add", ".")
    git("commit", "-qm", "c")
    monkeypatch.setattr(experiment, "BAM_TF_DIR", str(repo / "bam_tf"))
    results = str(repo / "results" / "grid.jsonl")
    assert experiment.git_commit([results])["git_dirty"] is False
    with open(results, "a") as f:
        f.write("{}\n")  # what every finished run does to a results file kept in the repository
    assert experiment.git_commit([results])["git_dirty"] is False
    assert experiment.git_commit([str(repo / "results" / "grid")])["git_dirty"] is True  # a name's prefix is no folder
    assert experiment.git_commit([])["git_dirty"] is True
    git("mv", "results/other.md", "results/moved.md")  # a rename ("R  new\0old"): both paths in the results
    assert experiment.git_commit([str(repo / "results")])["git_dirty"] is False
    git("mv", "bam_tf/code.py", "results/code.py")  # code moved into the results folder is code that changed
    assert experiment.git_commit([str(repo / "results")])["git_dirty"] is True
    git("mv", "results/code.py", "bam_tf/code.py")
    (repo / "bam_tf" / "code.py").write_text("y\n")
    commit = experiment.git_commit([results, str(repo / "results")])
    assert commit["git_dirty"] is True and len(commit["git_commit"]) == 40


def test_bad_experiment_settings(tmp_path):
    with pytest.raises(ExperimentError, match="unknown"):
        make_experiment(tmp_path, methods=("single", "bam_typo"))
    with pytest.raises(ExperimentError, match="repeats"):
        make_experiment(tmp_path, seeds=(0, 0))
    with pytest.raises(ExperimentError, match="single seed 0"):
        make_experiment(tmp_path, teacher_batch_size=0)


def test_paths_of_the_wrong_kind_are_refused_before_the_plan(tmp_path):
    base = BamConfig(model_dir=str(tmp_path / "exp"), tasks="CoLA", glue_dir=str(tmp_path))
    a_file = tmp_path / "grid.flags"
    a_file.write_text("--tasks=CoLA\n")
    for experiment_dir, results_file, store, match in [
            (tmp_path / "exp", tmp_path, "", r"--results_file=.* is a folder, not a file"),
            (a_file, tmp_path / "r.jsonl", "", r"--experiment_dir=.*grid.flags is a file, not a folder"),
            (tmp_path / "exp", a_file / "r.jsonl", "", r"--results_file=.*: .*grid.flags is a file, so nothing can"),
            (tmp_path / "exp", tmp_path / "r.jsonl", a_file, r"--teacher_outputs_store=.* is a file, not a folder")]:
        with pytest.raises(InputError, match=match):
            Experiment(base, ["single"], [0], str(experiment_dir), str(results_file), backend=FakeBackend(),
                       out=lambda text: None, teacher_outputs_store=str(store))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.flags"]


def test_a_second_runner_on_the_same_experiment_stops_at_once_naming_the_first(tmp_path):
    experiment = make_experiment(tmp_path)
    with exclusive_run_dir(experiment.experiment_dir):  # another runner holds the experiment
        with pytest.raises(RunDirBusyError, match=f"pid {os.getpid()} "):
            experiment.run()
    assert experiment.backend.calls == [] and not (tmp_path / "results.jsonl").exists()
    experiment.run()  # free again once the first one has gone
    assert len(result_keys(tmp_path / "results.jsonl")[0]) == 6


def test_a_second_runner_on_the_same_results_file_stops_at_once(tmp_path):
    first, second = make_experiment(tmp_path), make_experiment(tmp_path)
    second.experiment_dir = str(tmp_path / "other_exp")  # another experiment dir, the same results file
    with exclusive_file(first.results_file):
        with pytest.raises(RunDirBusyError, match=f"results.jsonl is in use by another bam_tf process .*pid "
                                                  f"{os.getpid()} .*use another file"):
            second.run()
    assert second.backend.calls == []


def test_mnli_is_also_recorded_on_dev_mismatched():
    assert eval_task_names(GLUE, ["CoLA", "MNLI", "RTE"]) == ["CoLA", "MNLI", "MNLI-mm", "RTE"]


def _script(name, *args, timeout=300):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "GLUE_DIR": GLUE_DIR or "/none"})


def _glue_file_names(root):
    """Every GLUE split's file, empty: what a dry run checks is that they are there."""
    for task in GLUE_TASKS.values():
        for layout in task.splits.values():
            path = root / task.directory / layout.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    return root


def test_the_flagfiles_parse_and_runner_owned_flags_are_refused(tmp_path):
    smoke = os.path.join(ROOT, "configs", "experiments", "smoke.flags")
    where = [f"--experiment_dir={tmp_path}/exp", f"--results_file={tmp_path}/r.jsonl", "--dry_run"]
    result = _script("run_experiments.py", f"--flagfile={smoke}", *where, "--glue_dir=/none")
    assert result.returncode == 1 and result.stderr.strip() == (  # the plan, then what the runs would miss
        "error: /none: GLUE data directory does not exist (set it with --glue_dir)")
    assert f"0 done, {7 * 2} to do" in result.stdout
    where.append(f"--glue_dir={_glue_file_names(tmp_path / 'glue')}")
    result = _script("run_experiments.py", f"--flagfile={smoke}", *where)
    assert result.returncode == 0, result.stderr
    assert f"0 done, {7 * 2} to do" in result.stdout
    cpu_mini_glue = os.path.join(ROOT, "configs", "experiments", "cpu_mini_glue.flags")
    result = _script("run_experiments.py", f"--flagfile={cpu_mini_glue}", *where)
    assert result.returncode == 0, result.stderr
    assert "0 done, 9 to do" in result.stdout
    faithful = os.path.join(ROOT, "configs", "experiments", "cpu_mini_glue_faithful.flags")
    result = _script("run_experiments.py", f"--flagfile={faithful}", *where)
    assert result.returncode == 0, result.stderr
    assert "0 done, 20 to do" in result.stdout
    budget = os.path.join(ROOT, "configs", "experiments", "cpu_mini_glue_budget.flags")
    result = _script("run_experiments.py", f"--flagfile={budget}", *where)
    assert result.returncode == 0, result.stderr
    assert "0 done, 20 to do" in result.stdout
    result = _script("run_experiments.py", f"--flagfile={smoke}", "--seed=3", *where)
    assert result.returncode != 0 and "--seed (use --seeds)" in result.stderr
    result = _script("run_experiments.py", f"--flagfile={smoke}", "--lerning_rate=3", *where)
    assert result.returncode != 0 and "lerning_rate" in result.stderr
    console = subprocess.run([os.path.join(os.path.dirname(sys.executable), "bam-experiments"),
                              f"--flagfile={smoke}", *where], capture_output=True, text=True, timeout=300, cwd=ROOT,
                             env={**os.environ, "GLUE_DIR": GLUE_DIR or "/none"})
    assert console.returncode == 0, console.stderr
    assert f"0 done, {7 * 2} to do" in console.stdout


def test_help_lists_the_runners_flags_and_bam_tfs():
    result = _script("run_experiments.py", "--help")  # absl's --help exits with status 1
    for flag in ["--methods:", "--seeds:", "--results_file:", "--[no]dry_run:", "--learning_rate:", "--tasks:"]:
        assert flag in result.stdout, flag
    for flag in ["--model_dir:", "--mode:", "--seed:", "--[no]distill:", "--[no]teacher_annealing:", "--distill_weight:"]:
        assert flag not in result.stdout, flag  # the runner sets these per run and refuses them in a flagfile


def test_the_runner_command_refuses_a_busy_experiment_dir(tmp_path):
    smoke = os.path.join(ROOT, "configs", "experiments", "smoke.flags")
    with exclusive_run_dir(str(tmp_path / "exp")):
        result = _script("run_experiments.py", f"--flagfile={smoke}", f"--experiment_dir={tmp_path}/exp",
                         f"--results_file={tmp_path}/r.jsonl", f"--glue_dir={_glue_file_names(tmp_path / 'glue')}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: {tmp_path}/exp is in use by another bam_tf process (pid {os.getpid()} " in result.stderr
    assert result.stderr.count("is in use by another bam_tf process") == 1  # printed once, not logged too
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "exp" / "single").exists()


@pytest.mark.skipif(not os.path.isdir(os.path.join(GLUE_DIR, "CoLA")),
                    reason="set GLUE_DIR to the GLUE data (download_glue_data.py layout) to run")
def test_smoke_experiment_end_to_end_then_report(tmp_path):
    smoke = os.path.join(ROOT, "configs", "experiments", "smoke.flags")
    where = [f"--experiment_dir={tmp_path}/exp", f"--results_file={tmp_path}/smoke.jsonl"]
    result = _script("run_experiments.py", f"--flagfile={smoke}", "--methods=single,multi,bam", *where)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    records, warning = read_results(str(tmp_path / "smoke.jsonl"))
    assert warning is None
    assert sorted((r["method"], r["seed"], r["task"]) for r in records) == sorted(
        (m, s, t) for m in ("single", "multi", "bam") for s in (0, 1) for t in TASKS)
    for record in records:
        assert record["score"] == pytest.approx(np.mean(list(record["metrics"].values())))
        assert record["flags"]["seed"] == record["seed"] and record["wall_time_s"] > 0
        assert record["training_steps"] > 0 and "git_commit" in record
    by_key = {(r["method"], r["seed"], r["task"]): r for r in records}
    assert by_key[("multi", 0, "CoLA")]["flags"]["distill"] is False
    assert by_key[("single", 1, "STS-B")]["model_dir"].endswith(os.path.join("single", "seed1", "teachers", "STS-B"))
    # The bam student of seed 1 learnt from seed 1's teachers, stored once under single/.
    single_outputs = load_teacher_outputs(f"{tmp_path}/exp/single/seed1/teacher_outputs/STS-B.npz")
    bam_outputs = load_teacher_outputs(f"{tmp_path}/exp/bam/seed1/teacher_outputs/STS-B.npz")
    np.testing.assert_array_equal(single_outputs.outputs, bam_outputs.outputs)

    again = _script("run_experiments.py", f"--flagfile={smoke}", "--methods=single,multi,bam", *where, "--dry_run")
    assert "6 done, 0 to do" in again.stdout, again.stdout + again.stderr

    report = _script("report.py", f"--results_file={tmp_path}/smoke.jsonl", f"--output={tmp_path}/smoke.md")
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "smoke.md").read_text()
    for needle in ("### bam vs single", "### bam vs multi", "Holm", "GLUE average", "1 / C(4, 2) = 0.1667",
                   "no task can be significant after Holm", "![per-task dev scores and λ](smoke.png)", "training_summary.json"):
        assert needle in text, needle
    with open(tmp_path / "smoke.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_user_task_from_a_definition_file_is_planned_like_a_glue_task(tmp_path):
    """The runner reads --task_defs before it reads --tasks (TensorFlow-free, as the dry run is)."""
    definitions = tmp_path / "tasks.json"
    for split in ("train", "dev"):
        (tmp_path / f"{split}.csv").write_text("s1,s2,y\na,b,same\nc,d,different\n", encoding="utf-8")
    definitions.write_text(json.dumps({"tasks": [{
        "name": "paraphrase", "files": {"train": "train.csv", "dev": "dev.csv"}, "text_a": "s1", "text_b": "s2",
        "label": "y", "labels": ["different", "same"], "metrics": ["f1", "accuracy"]}]}), encoding="utf-8")
    base = BamConfig(model_dir=str(tmp_path / "exp"), glue_dir="/glue", tasks="paraphrase,RTE",
                     task_defs=str(definitions))
    experiment = Experiment(base, ["single", "bam"], [0], str(tmp_path / "exp"), str(tmp_path / "r.jsonl"),
                            backend=FakeBackend(), out=lambda text: None)
    assert experiment.tasks == ["paraphrase", "RTE"]
    assert [(str(item.key), item.done) for item in experiment.plan()[0]] == [("single seed 0", False),
                                                                           ("bam seed 0", False)]
    with pytest.raises(ValueError, match="Unknown GLUE task 'paraphrase'"):
        GLUE.get("paraphrase")  # the experiment's tasks are its own, not the process's


def test_changed_task_definitions_are_refused_by_the_results_file_and_the_store(tmp_path):
    """The flags hold only the definition file's path: what it defines is recorded and compared too."""
    definitions = tmp_path / "defs" / "tasks.json"
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev"):
        (data / f"{split}.csv").write_text("s1,s2,y\na,b,same\nc,d,different\n", encoding="utf-8")

    def define(labels, folder):
        definitions.parent.mkdir(exist_ok=True)
        definitions.write_text(json.dumps({"tasks": [{
            "name": "paraphrase", "files": {"train": f"{folder}/train.csv", "dev": f"{folder}/dev.csv"},
            "text_a": "s1", "text_b": "s2", "label": "y", "labels": labels, "metrics": ["accuracy"]}]}))

    def experiment(name, methods, results):
        base = BamConfig(model_dir=str(tmp_path / name), glue_dir="/glue", tasks="paraphrase",
                         task_defs=str(definitions))
        return Experiment(base, list(methods), [0], str(tmp_path / name), str(tmp_path / results),
                          backend=FakeBackend(), out=lambda text: None, teacher_outputs_store=str(tmp_path / "store"))

    define(["different", "same"], str(data))
    experiment("exp", ("single", "bam"), "r.jsonl").run()
    records, _ = read_results(str(tmp_path / "r.jsonl"))
    assert [r["user_tasks"][0]["labels"] for r in records] == [["different", "same"]] * 2
    with open(tmp_path / "store" / "seed0" / "teacher_flags.json") as f:
        assert json.load(f)["user_tasks"][0]["labels"] == ["different", "same"]
    os.rename(data, tmp_path / "moved")
    define(["different", "same"], str(tmp_path / "moved"))  # the same task, its files elsewhere: still done
    assert all(item.done for item in experiment("exp", ("single", "bam"), "r.jsonl").plan()[0])
    define(["same", "different"], str(tmp_path / "moved"))
    changed = re.escape("(--task_defs paraphrase.labels: ['different', 'same'] → ['same', 'different'])")
    with pytest.raises(ExperimentError, match=r"r.jsonl holds single seed 0 \(paraphrase\) from a run with other "
                                              r"flags " + changed):
        experiment("exp", ("single", "bam"), "r.jsonl").plan()
    with pytest.raises(ExperimentError, match=r"teacher_flags.json: these teacher outputs come from teachers with "
                                              r"other flags " + changed):
        experiment("exp2", ("bam",), "r2.jsonl").run()
    assert not (tmp_path / "exp2" / "bam").exists()  # refused before any copy


def test_born_again_single_resumes_with_several_tasks_of_the_users_own(tmp_path):
    """Each of its run folders records only its own task's definition."""
    for split in ("train", "dev"):
        (tmp_path / f"{split}.csv").write_text("s1,y\na,yes\nc,no\n", encoding="utf-8")
    definitions = tmp_path / "tasks.json"
    definitions.write_text(json.dumps({"tasks": [
        {"name": name, "files": {"train": "train.csv", "dev": "dev.csv"}, "text_a": "s1", "label": "y",
         "labels": ["no", "yes"], "metrics": ["accuracy"]} for name in ("para_a", "para_b")]}))

    def experiment(backend):
        base = BamConfig(model_dir=str(tmp_path / "exp"), tasks="para_a,para_b", task_defs=str(definitions))
        return Experiment(base, ["single", "born_again_single"], [0], str(tmp_path / "exp"),
                          str(tmp_path / "r.jsonl"), backend=backend, out=lambda text: None)

    with pytest.raises(Killed):
        experiment(FakeBackend(kill_at=("student", "para_b"))).run()
    assert os.path.exists(tmp_path / "exp" / "born_again_single" / "seed0" / "para_a" / "task_defs.json")
    backend = FakeBackend()
    experiment(backend).run()  # goes on: para_a's student is kept, para_b's trained
    assert backend.trained == [("student", str(tmp_path / "exp" / "born_again_single" / "seed0" / "para_b"))]


def test_a_record_from_before_dataset_multiples_ran_without_them():
    from bam_tf.experiments.methods import changed_flags

    current_multi = {"tasks": "CoLA,STS-B", "dataset_multiples": True, "seed": 0}
    recorded_before = {"tasks": "CoLA,STS-B", "seed": 0}  # written before the flag existed
    assert changed_flags(recorded_before, current_multi) == "--dataset_multiples: False → True"
    assert changed_flags({**recorded_before, "dataset_multiples": True}, current_multi) == ""
    # a teacher (one task) never uses multiples: its old records and stores still count
    assert changed_flags({"tasks": "CoLA", "seed": 0}, {"tasks": "CoLA", "dataset_multiples": True, "seed": 0}) == ""
    assert changed_flags({}, current_multi) == ""  # a record without flags says nothing about them
