"""python tools/glue_submission.py --model_dir=<run dir or model> [--glue_dir=...] [--tasks=...] --output=FILE.zip

Predicts every GLUE task's TEST split with the matching head of a trained bam_tf model and writes the zip
the GLUE server takes (bam_tf.glue_submission); tasks without a head or a test file are listed as missing.
Exit status 0 when at least one file was written.

--tasks may also name the model's own tasks (trained with --task_defs): their definitions' test files are
predicted into <name>.tsv (index<TAB>prediction, the index from their id column, else the row number);
--glue_dir is then only needed if a GLUE task is named too.
"""

import os
import sys

from absl import app, flags

from bam_tf.cli_help import flag_error, parse_flags
from bam_tf.glue_submission import submission_tasks, write_submission
from bam_tf.user_errors import InputError

flags.DEFINE_string("model_dir", None, "Trained model folder, or a bam_tf run dir (its student/ is used).")
flags.DEFINE_string("glue_dir", os.environ.get("GLUE_DIR"), "GLUE data (download_glue_data.py layout), read for GLUE "
                    "tasks only; default $GLUE_DIR.")
flags.DEFINE_string("output", "submission.zip", "Zip to write.")
flags.DEFINE_string("tasks", None, "Comma-separated tasks to predict, GLUE's or the model's own (default: "
                    "every GLUE test task: " + ", ".join(t.name for t in submission_tasks()) + ").")
flags.DEFINE_integer("batch_size", 128, "Inference batch size.", lower_bound=1)
flags.DEFINE_integer("max_examples", None, "Only the first N test rows of each task (quick checks; the "
                     "result is not a valid submission).", lower_bound=1)
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def main(argv) -> int:
    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        summary = write_submission(FLAGS.model_dir, FLAGS.glue_dir, FLAGS.output, FLAGS.tasks, FLAGS.batch_size,
                                   FLAGS.max_examples)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(summary.format())
    return 0 if summary.output else 1


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
