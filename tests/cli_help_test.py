"""The console scripts' --help lists their flags (bam_tf.cli_help), as `python -m` does."""

import os
import subprocess
import sys

import pytest

# What pip's console-script wrapper does: a __main__ without the flags or a docstring, then the entry point.
WRAPPER = "import sys; sys.argv[0] = {name!r}; from {module} import console_main; sys.exit(console_main())"


@pytest.mark.parametrize("name, module, expected", [
    ("bam-train", "bam_tf.train", ["--model_dir", "--tasks", "--task_defs", "--num_train_epochs",
                                   "Runs the BAM pipeline"]),
    ("bam-export", "bam_tf.export", ["--model_dir", "--export_dir"]),
    ("bam-experiments", "bam_tf.experiments.runner_cli", ["--methods", "--seeds", "--results_file", "--tasks"]),
])
def test_a_console_scripts_help_lists_its_flags(name, module, expected):
    result = subprocess.run([sys.executable, "-c", WRAPPER.format(name=name, module=module), "--help"],
                            capture_output=True, text=True, timeout=300)
    shown = result.stdout + result.stderr
    for text in expected:
        assert text in shown, (text, shown[-2000:])


@pytest.mark.parametrize("module, argv, expected", [
    ("bam_tf.train", ["--model_dir=runs/x", "--tasks=RTE"], "--glue_dir (or $GLUE_DIR) is required"),
    ("bam_tf.train", ["--model_dir=runs/x", "stray"], "unexpected arguments ['stray']; every setting is a --flag"),
    ("bam_tf.experiments.runner_cli", ["--methods=bam,sngle", "--tasks=RTE"], "sngle"),
    # What absl itself refuses while parsing, printed the same way (not as "FATAL Flags parsing error").
    ("bam_tf.train", ["--learning_rat=1e-4"], "Unknown command line flag 'learning_rat'. Did you mean: learning_rate"),
    ("bam_tf.train", ["--flagfile=missing.flags"], "Unable to open flagfile"),
    ("bam_tf.experiments.runner_cli", ["--train_batch_size=many"], "--train_batch_size=many: invalid literal"),
    ("bam_tf.export", ["--export_dir=out", "--versoin=2"], "Unknown command line flag 'versoin'"),
    # absl raises a plain ValueError (not a flags.Error) for a value given to a --noNAME flag
    ("bam_tf.train", ["--model_dir=runs/x", "--nodistill=false"], "--nodistill=false does not take an argument"),
])
def test_a_flag_problem_is_a_short_message_not_every_flags_help(module, argv, expected, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    result = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, timeout=300,
                            env=env, cwd=tmp_path)
    assert result.returncode == 1
    error = result.stderr[result.stderr.find("error: "):]  # (TensorFlow may log a start-up line before it)
    assert error.startswith("error: ") and expected in error, result.stderr[-2000:]
    assert error.endswith("(--help lists every flag)\n")
    assert "(default:" not in result.stderr  # not ~200 lines of flag help around it
    assert "Traceback" not in result.stderr and "FATAL" not in result.stderr


def _train_with_flagfile(folder, flagfile):
    """`python -m bam_tf.train --flagfile=FLAGFILE` in `folder`, without $GLUE_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "GLUE_DIR"}
    return subprocess.run([sys.executable, "-m", "bam_tf.train", f"--flagfile={flagfile}"], capture_output=True,
                          text=True, timeout=300, env=env, cwd=folder)


def test_a_flag_absl_refuses_in_a_flagfile_is_named_with_its_file_and_line(tmp_path):
    (tmp_path / "inner.flags").write_text("# settings\n--tasks=RTE\n--seed=abc\n")
    (tmp_path / "outer.flags").write_text("--flagfile=inner.flags\n--learning_rat=1e-4\n")
    for flagfile, expected in (("outer.flags", "invalid literal for int() with base 10: 'abc' (in inner.flags:3)"),
                               ("inner.flags", "(in inner.flags:3)")):
        result = _train_with_flagfile(tmp_path, flagfile)
        assert result.returncode == 1 and expected in result.stderr, result.stderr[-2000:]
    (tmp_path / "inner.flags").write_text("--tasks=RTE\n")
    result = _train_with_flagfile(tmp_path, "outer.flags")
    assert "Unknown command line flag 'learning_rat'. Did you mean: learning_rate ? (in outer.flags:2)" in result.stderr


def test_a_refused_value_is_placed_on_its_own_line_not_on_a_valid_one_of_the_same_flag(tmp_path):
    # A comment after a value is part of the value for absl; the valid line in inner.flags is not the culprit.
    (tmp_path / "inner.flags").write_text("--max_seq_length=16\n--nodistill\n")
    (tmp_path / "outer.flags").write_text("--flagfile=inner.flags\n-max_seq_length=16 # short\n")
    (tmp_path / "bool.flags").write_text("--flagfile=inner.flags\n\n  --nodistill=false\n")
    for flagfile, expected in (("outer.flags", "'16 # short' (in outer.flags:2)\n"),
                               ("bool.flags", "--nodistill=false does not take an argument (in bool.flags:3)\n")):
        result = _train_with_flagfile(tmp_path, flagfile)
        assert result.returncode == 1 and expected in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script, argv, expected", [
    ("glue_submission.py", ["--model_dir=run", "stray"], "unexpected arguments ['stray']; every setting is a --flag"),
    ("gradient_shares.py", ["--model_dir=run", "--at=middle"], "--at: unknown ['middle']; choose from start, end"),
    ("serving_client.py", ["--task=rte", "--sentence1=a", "stray"], "unexpected arguments ['stray']; every setting is a --flag"),
    ("serving_client.py", ["--task=rte", "--sentence1=a", "--noprint=1"], "--noprint=1 does not take an argument"),
])
def test_the_tools_report_a_flag_problem_the_same_way(script, argv, expected, tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, os.path.join(root, "tools", script), *argv], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.endswith(f"error: {expected}\n(--help lists every flag)\n"), result.stderr[-2000:]
    assert "(default:" not in result.stderr and "Traceback" not in result.stderr
