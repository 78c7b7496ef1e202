"""A GLUE test-set submission: every task's TEST split predicted by the matching head of a trained model.

The zip the GLUE server (gluebenchmark.com) takes holds one `<official name>.tsv` per task (CoLA.tsv,
SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv, MNLI-m.tsv, MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv),
each with the header `index<TAB>prediction`, the test file's own index and the label string (STS-B: the
score clipped to [0, 5]). MNLI-mm and AX are scored by the MNLI head. A run dir's student/ is used.

Tasks the model has no head for, or whose test file is not in the GLUE folder, are listed as missing in
the summary, never skipped silently. The zip is written atomically. Command line:
`python tools/glue_submission.py`.

A task of the user's own that the model was trained on (--task_defs) is predicted the same way when named
in `tasks`: its definition's test file (stored with the model), into `<name>.tsv` indexed by its `id`
column (else the row number), labels as its definition names them, scores clipped to its range. Such a
zip is no GLUE submission; it is how a user gets a test file's predictions. GLUE data is only needed for
GLUE tasks.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile

from bam_tf import atomic_files
from bam_tf.glue_tasks import TASKS
from bam_tf.task import Task
from bam_tf.user_errors import InputError, MissingInputError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow itself is imported by write_submission

@dataclasses.dataclass
class SubmissionSummary:
    output: str | None  # None when nothing was written
    written: dict[str, int]  # submission file name -> rows
    missing: dict[str, str]  # task name -> why
    partial: bool  # --max_examples cut the test files

    def format(self) -> str:
        lines = []
        if self.output:
            lines.append(f"wrote {self.output}: " + ", ".join(f"{f} ({n} rows)" for f, n in self.written.items()))
        else:
            lines.append("nothing written")
        if self.missing:
            lines.append("missing: " + ", ".join(f"{t} ({why})" for t, why in self.missing.items()))
        if self.partial:
            lines.append("warning: --max_examples cut the test files; this is not a complete GLUE submission")
        return "\n".join(lines)


def submission_tasks() -> list[Task]:
    """Every task the GLUE server scores, in the GLUE table's order."""
    return [t for t in TASKS.values() if "test" in t.splits]


def submission_tsv(official_index: list[str], predictions: list[str]) -> str:
    return "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in zip(official_index, predictions))


def write_submission(model_dir: str, glue_dir: str, output: str, tasks: str | None = None,
                     batch_size: int = 128, max_examples: int | None = None) -> SubmissionSummary:
    """tasks: comma-separated names, of GLUE tasks or of the model's own (default: every GLUE test task)."""
    from bam_tf.evaluation import predict_head
    from bam_tf.glue_reader import read_split
    from bam_tf.run_layout import resolve_model_dir
    from bam_tf.task_set import TaskSet
    from bam_tf.text_encoding import encode_task_data
    from bam_tf.trained_model import load_trained_model

    # A leading ~ that no shell expanded (--output=~/x.zip), as training reads its paths.
    output, glue_dir = os.path.expanduser(output), glue_dir and os.path.expanduser(glue_dir)
    atomic_files.check_can_write(output, f"--output={output}", folder=False)  # before the slow part
    if max_examples is not None and max_examples < 1:
        raise InputError(f"--max_examples={max_examples}: give a positive number of test rows, or leave it out")
    model, encoder = load_trained_model(resolve_model_dir(model_dir))
    try:
        chosen = TaskSet(t for t in model.tasks if t.is_user_task).parse_list(tasks) if tasks else submission_tasks()
    except InputError as error:  # its hint (--task_defs) is for training runs: here the model knows its tasks
        raise InputError(f"--tasks={tasks}: {str(error).split(';')[0]}; GLUE tasks, or this model's own: "
                         f"{', '.join(t.name for t in model.tasks if t.is_user_task) or 'none'}") from None
    if any(not t.is_user_task for t in chosen) and not os.path.isdir(glue_dir or ""):
        where = f"{glue_dir}: GLUE data directory does not exist" if glue_dir else "--glue_dir is not set"
        raise MissingInputError(f"{where} (GLUE tasks read their test files from it; to predict only this model's "
                                "own tasks, name them in --tasks)")
    heads = {t.name for t in model.tasks}
    written, missing, files = {}, {}, {}
    for task in chosen:
        if "test" not in task.splits:
            missing[task.name] = "no test split"
            continue
        if task.head not in heads:
            missing[task.name] = "no head" if task.head == task.name else f"no {task.head} head"
            continue
        path = os.path.join(glue_dir or "", task.directory, task.splits["test"].filename)  # user tasks: absolute
        if not os.path.isfile(path):
            missing[task.name] = f"no test file {path}"
            continue
        data = read_split(glue_dir, task, "test", max_examples=max_examples)
        outputs = predict_head(model, encode_task_data(data, encoder), task.head, batch_size)
        files[task.submission_file] = submission_tsv(data.official_index, task.prediction_strings(outputs))
        written[task.submission_file] = len(data)
    if not files:
        return SubmissionSummary(None, written, missing, max_examples is not None)
    output = os.path.abspath(output)
    with atomic_files.atomic_open(output, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in files.items():
                archive.writestr(name, text.encode("utf-8"))
    return SubmissionSummary(output, written, missing, max_examples is not None)
