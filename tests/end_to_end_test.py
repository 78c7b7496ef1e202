"""The whole chain through the real CLI: teachers → teacher outputs → student → dev scores.

Tiny random backbone (2 layers, hidden 32) over slices of the real GLUE data in $GLUE_DIR.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from support import GLUE_DIR, run_train_in_process
from support import needs_glue as _needs_glue

TASKS = ["CoLA", "MRPC", "STS-B"]
MAX_TRAIN = 48
needs_glue = _needs_glue(TASKS)


def run_cli(*flags, check=True, in_process=True):
    """The CLI in this process (tests/support.run_train_in_process), or as `python -m bam_tf.train`."""
    if in_process:
        result = run_train_in_process(*flags)
    else:
        result = subprocess.run([sys.executable, "-m", "bam_tf.train", *flags], capture_output=True, text=True,
                                timeout=600, env={**os.environ, "GLUE_DIR": GLUE_DIR})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def tiny_run_flags(model_dir):
    return [f"--model_dir={model_dir}", f"--tasks={','.join(TASKS)}", "--backbone=random:layers=2,hidden=32",
            f"--max_train_examples={MAX_TRAIN}", "--max_eval_examples=40", "--max_seq_length=64",
            "--teacher_batch_size=8", "--teacher_epochs=1", "--train_batch_size=16", "--num_train_epochs=1",
            "--log_every=5"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    model_dir = str(tmp_path_factory.mktemp("bam") / "run")
    result = run_cli(*tiny_run_flags(model_dir), in_process=False)  # once through a real process
    return model_dir, result


@needs_glue
def test_every_artifact_is_written(finished_run):
    model_dir, _ = finished_run
    for name in ["flags.txt", "config.json", "dev_results.json"]:
        assert os.path.isfile(os.path.join(model_dir, name)), name
    for task in TASKS:
        teacher = os.path.join(model_dir, "teachers", task)
        for name in ["model_config.json", "heads.npz", "dev_results.json", "training_summary.json"]:
            assert os.path.isfile(os.path.join(teacher, name)), (task, name)
        assert os.path.isfile(os.path.join(teacher, "backbone", "config.json"))
        with np.load(os.path.join(model_dir, "teacher_outputs", f"{task}.npz")) as outputs:
            swapped = task in ("MRPC", "STS-B")  # trained on both sentence orders
            assert outputs["outputs"].shape == (MAX_TRAIN * (2 if swapped else 1), 1 if task == "STS-B" else 2)
            assert np.isfinite(outputs["outputs"]).all()
            assert len(set(outputs["example_ids"].tolist())) == len(outputs["example_ids"])
    assert not [p for p in os.listdir(model_dir) if p.endswith(".tmp")]
    assert not os.path.exists(os.path.join(model_dir, "checkpoints"))  # removed with the last stage's


@needs_glue
def test_student_annealed_to_gold_and_saw_every_task(finished_run):
    model_dir, _ = finished_run
    with open(os.path.join(model_dir, "student", "training_summary.json")) as f:
        summary = json.load(f)
    # λ of the last batch is (T − 1) / T, the original's global_step / num_train_steps
    assert summary["final_gold_weight"] == pytest.approx((summary["steps"] - 1) / summary["steps"])
    assert set(summary["examples_per_task"]) == set(TASKS)
    assert all(count > 0 for count in summary["examples_per_task"].values())
    assert sum(summary["examples_per_task"].values()) == summary["steps"] * 16
    # How it computed, for records that span machines (bam_tf.experiments results lines copy these).
    assert summary["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert any(kind in summary["device"] for kind in ("CPU ", "GPU ", "TPU"))


@needs_glue
def test_dev_results_cover_each_task_with_its_glue_metrics(finished_run):
    model_dir, result = finished_run
    with open(os.path.join(model_dir, "dev_results.json")) as f:
        results = json.load(f)
    expected_metrics = {"CoLA": {"mcc"}, "MRPC": {"f1", "accuracy"}, "STS-B": {"pearson", "spearman"}}
    for who in ("student", "teachers"):
        assert {task: set(m) for task, m in results[who]["tasks"].items()} == expected_metrics
        assert -1.0 <= results[who]["glue_average"] <= 1.0
    for task in TASKS:
        assert task in result.stdout  # the printed dev table


def _same_scores(after: dict, before: dict) -> None:
    """Every metric of every task equal (the tiny models' CoLA mcc is 0 and MRPC predicts one class: only a
    comparison that includes STS-B's correlations tells one model from another)."""
    assert sorted(after) == sorted(before)
    for task, scores in before.items():
        assert after[task] == pytest.approx(scores, abs=1e-6), task


@needs_glue
def test_evaluate_mode_rescores_the_student_and_flagfile_reruns(finished_run, tmp_path):
    model_dir, _ = finished_run
    with open(os.path.join(model_dir, "dev_results.json")) as f:
        before = json.load(f)
    copy = str(tmp_path / "copy")
    shutil.copytree(model_dir, copy)
    # Scores that rescoring must replace: a run that only read the saved ones back would keep them.
    made_up = {"tasks": {task: {metric: 0.123 for metric in scores}
                         for task, scores in before["student"]["tasks"].items()}, "glue_average": 0.123}
    with open(os.path.join(copy, "student", "dev_results.json"), "w") as f:
        json.dump(made_up, f)
    os.remove(os.path.join(copy, "dev_results.json"))
    run_cli(f"--flagfile={os.path.join(copy, 'flags.txt')}", f"--model_dir={copy}", "--mode=evaluate")
    for path in (os.path.join(copy, "dev_results.json"), os.path.join(copy, "student", "dev_results.json")):
        with open(path) as f:
            after = json.load(f)
        after = after.get("student", after)
        _same_scores(after["tasks"], before["student"]["tasks"])
        assert after["glue_average"] == pytest.approx(before["student"]["glue_average"], abs=1e-6)


@needs_glue
def test_gradient_shares_of_the_runs_student(finished_run):
    model_dir, _ = finished_run
    result = subprocess.run([sys.executable, "tools/gradient_shares.py", f"--model_dir={model_dir}", "--batches=2"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "GLUE_DIR": GLUE_DIR},
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    titles = [i for i, line in enumerate(lines) if line.startswith(model_dir)]
    assert len(titles) == 2
    assert "fresh model, batches 0–1 of" in lines[titles[0]] and "trained student" in lines[titles[1]]
    for start, end in zip(titles, titles[1:] + [len(lines)]):
        rows = [line.split("|") for line in lines[start:end] if line.startswith("| ") and "---" not in line][1:]
        assert [row[1].strip() for row in rows] == TASKS
        assert sum(int(row[2]) for row in rows) == 2 * 16  # two student batches of 16
        shares = [float(row[5]) for row in rows]  # printed to 3 decimals
        assert all(np.isfinite(shares)) and any(share != 0 for share in shares)


@needs_glue
def test_a_model_dir_refuses_different_flags(finished_run):
    model_dir, _ = finished_run
    flags = tiny_run_flags(model_dir) + ["--seed=7", "--mode=evaluate"]
    result = run_cli(*flags, check=False)
    assert result.returncode != 0
    assert "--seed" in result.stderr and "other flags" in result.stderr
    assert "train only a new student" not in result.stderr  # the teachers depend on the seed


@needs_glue
def test_a_student_only_change_is_told_how_to_keep_the_teachers(finished_run, tmp_path):
    model_dir, _ = finished_run
    result = run_cli(*tiny_run_flags(model_dir), "--temperature=2", check=False)
    assert result.returncode != 0
    assert f"first copy {model_dir}/teachers and {model_dir}/teacher_outputs into the new --model_dir" in result.stderr
    new = tmp_path / "new"
    for part in ("teachers", "teacher_outputs"):
        shutil.copytree(os.path.join(model_dir, part), new / part)
    heads = new / "teachers" / "CoLA" / "heads.npz"
    before = heads.stat().st_mtime_ns
    run_cli(*tiny_run_flags(str(new)), "--temperature=2")
    assert heads.stat().st_mtime_ns == before  # the teachers were kept, not trained again
    assert (new / "student" / "dev_results.json").is_file()


@needs_glue
def test_a_copied_run_folder_is_the_same_run(finished_run, tmp_path):
    model_dir, _ = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(model_dir, copy)
    original_results = os.stat(os.path.join(model_dir, "dev_results.json")).st_mtime_ns
    run_cli(*tiny_run_flags(copy), "--mode=evaluate")  # not "a run with other flags (--model_dir ...)"
    assert os.stat(os.path.join(model_dir, "dev_results.json")).st_mtime_ns == original_results
    assert f"--model_dir={copy}" in open(os.path.join(copy, "flags.txt"), encoding="utf-8").read()
    result = run_cli(*tiny_run_flags(copy), "--seed=7", "--mode=evaluate", check=False)
    assert f"--flagfile={copy}/flags.txt --model_dir={copy} to continue that run" in result.stderr


@needs_glue
def test_a_teacher_saved_without_its_scores_is_scored_not_dropped(finished_run, tmp_path):
    model_dir, _ = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(model_dir, copy)
    # STS-B's: its correlations depend on the model (the tiny CoLA teacher's mcc is 0 whatever it loads)
    os.remove(os.path.join(copy, "teachers", "STS-B", "dev_results.json"))  # as a kill after the model's save left it
    run_cli(*tiny_run_flags(copy), "--mode=evaluate")
    with open(os.path.join(model_dir, "dev_results.json")) as f:
        before = json.load(f)["teachers"]
    with open(os.path.join(copy, "dev_results.json")) as f:
        after = json.load(f)["teachers"]
    _same_scores(after["tasks"], before["tasks"])
    assert after["glue_average"] == pytest.approx(before["glue_average"], abs=1e-6)
    with open(os.path.join(copy, "teachers", "STS-B", "dev_results.json")) as f:
        _same_scores(json.load(f)["tasks"], {"STS-B": before["tasks"]["STS-B"]})


@needs_glue
def test_teacher_outputs_are_computed_in_the_runs_precision_whoever_asks(finished_run, tmp_path, monkeypatch):
    # The experiment runner clears the Keras session (policy float32) before asking for teacher outputs;
    # bam-train asks inside its run. The same flags must give the same outputs either way.
    import keras

    from bam_tf import pipeline as pipeline_module
    from bam_tf.config import BamConfig

    model_dir, _ = finished_run
    pipeline = pipeline_module.BamPipeline(BamConfig.from_json_file(os.path.join(model_dir, "config.json")),
                                           verbose=False)
    seen, predict_head = [], pipeline_module.predict_head

    def policy_spy(*args, **kwargs):
        seen.append(keras.mixed_precision.global_policy().name)
        return predict_head(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "predict_head", policy_spy)
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32" if pipeline.precision != "float32" else "mixed_bfloat16")
    try:
        pipeline.write_teacher_outputs(output_dir=str(tmp_path))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert seen == [pipeline.precision] * len(TASKS)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{task}.npz" for task in TASKS)


@needs_glue
def test_the_experiment_runners_backend_scores_predicts_and_reads_with_a_runs_models(finished_run, tmp_path):
    # What the runner asks of a run's models besides training: dev scores of a model saved without them, a
    # student's outputs as multi_to_multi's teacher, and the training data's sizes and fingerprints.
    from bam_tf.config import BamConfig
    from bam_tf.experiments.pipeline_backend import PipelineBackend
    from bam_tf.teacher_outputs import load_teacher_outputs

    model_dir, _ = finished_run
    config = BamConfig.from_json_file(os.path.join(model_dir, "config.json"))
    student = str(tmp_path / "student")
    shutil.copytree(os.path.join(model_dir, "student"), student)
    os.remove(os.path.join(student, "dev_results.json"))
    backend = PipelineBackend(verbose=False)
    backend.dev_results(config, student)
    with open(os.path.join(model_dir, "student", "dev_results.json")) as f:
        before = json.load(f)
    with open(os.path.join(student, "dev_results.json")) as f:
        after = json.load(f)
    _same_scores(after["tasks"], before["tasks"])
    backend.write_teacher_outputs(config, student, str(tmp_path / "outputs"))
    assert backend.train_sizes(config) == {"CoLA": MAX_TRAIN, "MRPC": 2 * MAX_TRAIN, "STS-B": 2 * MAX_TRAIN}
    for task in TASKS:
        written = load_teacher_outputs(str(tmp_path / "outputs" / f"{task}.npz"))
        assert written.outputs.shape == (backend.train_sizes(config)[task], 1 if task == "STS-B" else 2)
        by_teacher = load_teacher_outputs(os.path.join(model_dir, "teacher_outputs", f"{task}.npz"))
        assert written.data_fingerprint == by_teacher.data_fingerprint == backend.train_fingerprint(config, task)


def test_conflicting_flags_fail_before_loading_anything(tmp_path):
    result = run_cli(f"--model_dir={tmp_path}", "--glue_dir=/nonexistent", "--distill_weight=0.3", check=False)
    assert result.returncode != 0
    assert "--distill_weight only applies with --noteacher_annealing" in result.stderr
    assert not os.listdir(tmp_path)


def test_unknown_flag_fails_with_its_name(tmp_path):
    result = run_cli(f"--model_dir={tmp_path}", "--learning_rat=1e-4", check=False)
    assert result.returncode != 0
    assert "learning_rat" in result.stderr


def test_a_run_from_before_dataset_multiples_is_refused_naming_the_flag_to_add(tmp_path):
    """Its config.json lacks the key (it trained without multiples); its flags.txt lacks the flag too."""
    from bam_tf.config import BamConfig
    from bam_tf.pipeline import BamPipeline

    config = BamConfig(model_dir=str(tmp_path), glue_dir="/unused", tasks="RTE,STS-B",
                       backbone="random:layers=1,hidden=16")
    recorded = config.to_dict()
    del recorded["dataset_multiples"]
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    (tmp_path / "student").mkdir()
    with pytest.raises(ValueError, match=r"--dataset_multiples: False → True \(recorded before --dataset_multiples "
                                         r"existed: add --nodataset_multiples\)"):
        BamPipeline(config)._check_model_dir()
    BamPipeline(BamConfig(**{**config.to_dict(), "dataset_multiples": False}))._check_model_dir()  # accepted
