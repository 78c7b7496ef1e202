"""bam_tf.run_layout: the paths of a run folder, as the pipeline writes them."""

from bam_tf.run_layout import STAGE_OUTPUTS, RunLayout, resolve_model_dir


def test_every_path_of_a_run_folder():
    layout = RunLayout("/runs/x")
    assert layout.teacher_dir("STS-B") == "/runs/x/teachers/STS-B"
    assert layout.teacher_outputs_dir == "/runs/x/teacher_outputs"
    assert layout.teacher_outputs_path("STS-B") == "/runs/x/teacher_outputs/STS-B.npz"
    assert layout.student_dir == "/runs/x/student"
    assert layout.checkpoint_dir("student") == "/runs/x/checkpoints/student"
    assert layout.tensorboard_dir("teacher_RTE") == "/runs/x/tensorboard/teacher_RTE"
    assert (layout.config_path, layout.flags_path) == ("/runs/x/config.json", "/runs/x/flags.txt")
    assert (layout.task_defs_record, layout.dev_results_path) == ("/runs/x/task_defs.json", "/runs/x/dev_results.json")
    # everything a stage leaves lies under one of these
    assert {p.split("/")[3] for p in (layout.teacher_dir("RTE"), layout.teacher_outputs_dir, layout.student_dir,
                                      layout.checkpoint_dir("s"))} == set(STAGE_OUTPUTS)


def test_a_model_dir_under_a_tilde_no_shell_expanded_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "run" / "student").mkdir(parents=True)
    (tmp_path / "run" / "student" / "model_config.json").write_text("{}")
    assert resolve_model_dir("~/run") == str(tmp_path / "run" / "student")
    assert resolve_model_dir("~/run/student") == str(tmp_path / "run" / "student")
