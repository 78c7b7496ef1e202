"""python -m bam_tf.export --model_dir=<trained model or run dir> --export_dir=<dir> [--version=N]

Exports a trained bam_tf model as a TensorFlow Serving SavedModel in <export_dir>/<version>/ (the
layout `tensorflow_model_server --model_base_path=<export_dir>` watches). Tokenisation runs inside the
graph (the model's own WordPiece tokenizer and [CLS] a [SEP] b [SEP] packer, as tensorflow-text ops), so
clients send raw text. The version defaults to 1 + the highest numeric version already there (or 1); an
existing version is never overwritten. The SavedModel is written to a hidden temporary folder inside
<export_dir> and renamed into place at the end, so TF Serving never sees a half-written version.

Signatures (task names in lower case, non-alphanumerics as "_": rte, sts_b, sst_2, mnli, ...; a user task
of --task_defs gets its own the same way, e.g. paraphrase, with its own label strings and score range):
  <task>           sentence1 (and sentence2 for pair tasks, as many as sentence1): string [batch]
                   -> logits float32 [batch, K]; classification: probabilities float32 [batch, K] and
                      label string [batch] (the official GLUE label string); STS-B: score float32 [batch]
                      (on the 0–5 label scale; logits hold the head's raw output, trained on score / 5)
                      and label string [batch] (score clipped to [0, 5], 3 decimals, the form a GLUE
                      submission uses)
  serving_default  sentence1, sentence2: string [batch], as many of each (single-sentence tasks ignore
                   sentence2; send "")
                   -> every task's outputs, named <task>_logits, <task>_probabilities / <task>_score,
                      <task>_label
  token_ids        token_ids, segment_ids, padding_mask: int32 [batch, length] (padding_mask 1 for real
                   tokens, 0 for padding; the three of one shape) for clients that tokenise themselves
                   -> <task>_logits per head
  A request that breaks these (3 sentence1 and 2 sentence2, say) gets an INVALID_ARGUMENT error naming it.

<version>/assets.extra/bam_export.json describes the tasks, labels, signatures and max_seq_length
(TF Serving ignores assets.extra). Serving the graph needs the tensorflow-text ops: the stock
tensorflow_model_server links them; a Python client must `import tensorflow_text` before loading.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile

from bam_tf import atomic_files
from bam_tf.run_layout import RunLayout, resolve_model_dir
from bam_tf.task import task_slug
from bam_tf.user_errors import InputError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXPORT_METADATA = "bam_export.json"
TOKEN_IDS_SIGNATURE = "token_ids"


class ExportError(InputError):
    pass


def signature_name(task_name: str) -> str:
    """"STS-B" -> "sts_b": the SavedModel signature (and output-name prefix) of a task."""
    return task_slug(task_name)


def existing_versions(export_dir: str) -> list[int]:
    """Numeric version folders in export_dir (what TF Serving would load), sorted."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(name) for name in os.listdir(export_dir)
                  if re.fullmatch(r"[0-9]+", name) and os.path.isdir(os.path.join(export_dir, name)))


def next_version(export_dir: str) -> int:
    versions = existing_versions(export_dir)
    return versions[-1] + 1 if versions else 1


def check_export_dir(export_dir: str) -> None:
    try:
        atomic_files.check_can_write(export_dir, f"--export_dir={export_dir}", folder=True)
    except InputError as error:
        raise ExportError(str(error)) from None


def check_version_free(export_dir: str, version: int) -> str:
    if version < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    path = os.path.join(export_dir, str(version))
    if os.path.exists(path):
        raise ExportError(f"{path} already exists; versions are never overwritten (pick another --version, "
                          "or leave --version out to use the next free one)")
    return path


def build_export_archive(model, encoder):
    """A keras ExportArchive holding every signature described in the module docstring."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    # No archive.track(model): the variables the signatures use are saved anyway (as the graph's captures),
    # and tracking would save every weight a second time through its keras.Variable wrapper (2x the size).

    def heads(features):
        return model(features, training=False)

    def single_fn(task):
        def serve(sentence1):
            return task.serving_outputs(heads(encoder(sentence1))[task.name])
        return serve

    def pair_fn(task):
        def serve(sentence1, sentence2):
            return task.serving_outputs(heads(encoder(sentence1, sentence2))[task.name])
        return serve

    for task in model.tasks:
        if task.is_pair:
            archive.add_endpoint(signature_name(task.name), pair_fn(task),
                                 [tf.TensorSpec([None], tf.string, name="sentence1"),
                                  tf.TensorSpec([None], tf.string, name="sentence2")])
        else:
            archive.add_endpoint(signature_name(task.name), single_fn(task),
                                 [tf.TensorSpec([None], tf.string, name="sentence1")])

    def serve_all(sentence1, sentence2):
        outputs = {}
        single = pair = None
        if any(not t.is_pair for t in model.tasks):
            single = heads(encoder(sentence1))
        if any(t.is_pair for t in model.tasks):
            pair = heads(encoder(sentence1, sentence2))
        for task in model.tasks:
            logits = (pair if task.is_pair else single)[task.name]
            outputs.update(task.serving_outputs(logits, prefix=signature_name(task.name) + "_"))
        return outputs

    archive.add_endpoint("serving_default", serve_all,
                         [tf.TensorSpec([None], tf.string, name="sentence1"),
                          tf.TensorSpec([None], tf.string, name="sentence2")])

    def serve_token_ids(token_ids, segment_ids, padding_mask):
        shape = tf.shape(token_ids)
        checks = [tf.debugging.assert_equal(tf.shape(t), shape, message=f"{name} must have the shape of token_ids")
                  for name, t in (("segment_ids", segment_ids), ("padding_mask", padding_mask))]
        checks.append(tf.debugging.Assert(tf.logical_or(shape[0] == 0, shape[1] > 0),
                                          ["token_ids needs at least one column (the [CLS] token)"]))
        with tf.control_dependencies(checks):
            # An empty batch may come as [0, 0]; the backbone needs a position to slice.
            widen = [[0, 0], [0, tf.cast(shape[1] == 0, tf.int32)]]
            token_ids, segment_ids, padding_mask = (tf.pad(t, widen) for t in (token_ids, segment_ids, padding_mask))
        logits = heads({"token_ids": token_ids, "segment_ids": segment_ids,
                        "padding_mask": tf.not_equal(padding_mask, 0)})
        return {f"{signature_name(t.name)}_logits": logits[t.name] for t in model.tasks}

    archive.add_endpoint(TOKEN_IDS_SIGNATURE, serve_token_ids,
                         [tf.TensorSpec([None, None], tf.int32, name=n)
                          for n in ("token_ids", "segment_ids", "padding_mask")])
    return archive


def export_metadata(model, encoder, source: str) -> dict:
    return {
        "source_model_dir": os.path.abspath(source) if source else None,
        "max_seq_length": encoder.max_seq_length,
        "tasks": [{"task": t.name, "signature": signature_name(t.name), "is_pair": t.is_pair,
                   "is_regression": t.is_regression, "labels": list(t.labels),
                   "label_range": list(t.label_range) if t.label_range else None,
                   "inputs": ["sentence1", "sentence2"] if t.is_pair else ["sentence1"],
                   "outputs": list(t.output_names)} for t in model.tasks],
        "serving_default": {"inputs": ["sentence1", "sentence2"], "outputs": "<signature>_<output> of every task"},
        TOKEN_IDS_SIGNATURE: {"inputs": ["token_ids", "segment_ids", "padding_mask"], "dtype": "int32",
                              "padding_mask": "1 for real tokens, 0 for padding",
                              "outputs": [f"{signature_name(t.name)}_logits" for t in model.tasks]},
    }


def export_saved_model(model, encoder, export_dir: str, version: int | None = None,
                       source: str = "") -> str:
    """Writes <export_dir>/<version>/ (next free version when None) and returns its path."""
    export_dir = os.path.abspath(os.path.expanduser(export_dir))  # a leading ~ no shell expanded (--flag=~/x)
    check_export_dir(export_dir)
    if version is None:
        version = next_version(export_dir)
    final = check_version_free(export_dir, version)
    os.makedirs(export_dir, exist_ok=True)
    # A dot-prefixed, non-numeric name: TF Serving ignores it until the rename below.
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_dir)
    try:
        saved_model = os.path.join(tmp, "model")
        build_export_archive(model, encoder).write_out(saved_model, verbose=False)
        extra = os.path.join(saved_model, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        with open(os.path.join(extra, EXPORT_METADATA), "w", encoding="utf-8") as f:
            json.dump(export_metadata(model, encoder, source), f, indent=2)
        check_version_free(export_dir, version)  # someone else may have taken it meanwhile
        os.rename(saved_model, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def export_trained_model(model_dir: str, export_dir: str, version: int | None = None) -> str:
    export_dir = os.path.abspath(os.path.expanduser(export_dir))
    check_export_dir(export_dir)  # fail before anything slow
    if version is not None:
        check_version_free(export_dir, version)
    source = resolve_model_dir(model_dir)
    from bam_tf.trained_model import load_trained_model
    model, encoder = load_trained_model(source)
    return export_saved_model(model, encoder, export_dir, version, source=source)


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("model_dir", None, "Trained model folder (has model_config.json), or a bam_tf run dir "
                        "whose student/ is exported.")
    flags.DEFINE_string("export_dir", None, "Model base path for TF Serving; the SavedModel goes to "
                        "<export_dir>/<version>/.")
    flags.DEFINE_integer("version", None, "Version folder to write (a positive integer). Default: 1 + the "
                         "highest existing numeric version, or 1. An existing version is an error.", lower_bound=1)
    flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv) -> int:
    from absl import flags

    from bam_tf.cli_help import flag_error

    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    FLAGS = flags.FLAGS
    try:
        path = export_trained_model(FLAGS.model_dir, FLAGS.export_dir, FLAGS.version)
    except InputError as error:  # ExportError, a missing model, ...: anything else is a bug
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"exported {path}")
    return 0


def console_main() -> None:
    """The `bam-export` command (pyproject.toml); the same as python -m bam_tf.export."""
    from absl import app, flags

    from bam_tf.cli_help import list_flags_in_help, parse_flags

    _define_flags()
    list_flags_in_help(flags.FLAGS, [sys.modules[__name__]], __doc__)
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    console_main()
