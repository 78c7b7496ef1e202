"""The console scripts' --help lists their flags (bam_tf.cli_help), as `python -m` does."""

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
