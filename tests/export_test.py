"""The TF Serving export: signatures, raw-text tokenisation in the graph, versioning, saved_model_cli.

The SavedModel is loaded in a fresh process that imports only tensorflow and tensorflow_text (what a
serving host has), and its outputs must equal the in-process Keras model's to 1e-4 on real GLUE dev
examples and on hostile strings.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bam_tf import export
from bam_tf.glue_reader import TaskData, read_split
from bam_tf.task_set import glue_task
from bam_tf.user_errors import InputError

GLUE_DIR = os.environ.get("GLUE_DIR", "")
TASKS = ["RTE", "STS-B", "CoLA"]  # pair classification, regression, single sentence
DEV_EXAMPLES = 200
MAX_SEQ_LENGTH = 64
HAVE_GLUE = all(os.path.isfile(os.path.join(GLUE_DIR, t, "dev.tsv")) for t in TASKS)
GLUE_SKIP_REASON = f"GLUE_DIR={GLUE_DIR!r} has no {'/'.join(TASKS)} dev.tsv; real-data comparisons skipped"
needs_glue = pytest.mark.skipif(not HAVE_GLUE, reason=GLUE_SKIP_REASON)

LONG = " ".join(f"word{i % 97} tokenisation" for i in range(1000))  # 2,000 words, far past max_seq_length
HOSTILE = [
    ("", ""),
    ("Ça coûte 10 €", "naïve café, Øresund, straße"),
    ("👍🏽 🤖🎉 emoji only", ""),
    ("机器学习很有趣。", "東京は日本の首都です"),
    (LONG, "short"),
    ("short", LONG),
    (LONG, LONG),
    ("مرحبا بالعالم", "Привет, мир"),
    ("tabs\tand\nnewlines\r\n", "zero\u200bwidth\u200djoiner \x00 nul"),
    ("   ", "!!!???..."),
]

SERVING_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers the tokenizer ops; nothing else of the project is importable here

saved_model, inputs_path, output_path = sys.argv[1:]
with open(inputs_path, encoding="utf-8") as f:
    calls = json.load(f)
loaded = tf.saved_model.load(saved_model)
results = {}
for call in calls:
    fn = loaded.signatures[call["signature"]]
    feed = {}
    for name, value in call["inputs"].items():
        dtype = tf.int32 if call["signature"] == "token_ids" else tf.string
        feed[name] = tf.constant(value, dtype)
        if "shapes" in call:
            feed[name] = tf.reshape(feed[name], call["shapes"][name])
    if "expect_error" in call:  # a malformed request: its error message, or "no error"
        try:
            outputs = fn(**feed)
            shapes = sorted((key, tuple(value.shape)) for key, value in outputs.items())
            results[call["name"] + "/error"] = np.array("no error: " + repr(shapes))
        except tf.errors.InvalidArgumentError as error:
            results[call["name"] + "/error"] = np.array(error.message)
        continue
    for key, tensor in fn(**feed).items():
        value = tensor.numpy()
        if value.dtype == object:
            value = np.array([v.decode("utf-8") for v in value])
        results[call["name"] + "/" + key] = value
forbidden = sorted(m for m in ("bam_tf", "keras_hub") if m in sys.modules)
assert not forbidden, forbidden
np.savez(output_path, **results)
'''


def make_tiny_model_dir(path, tasks):
    """Saves an untrained 2-layer model; returns (model, encoder) as load_trained_model would."""
    from bam_tf.backbone import load_backbone
    from bam_tf.model import MultiTaskBert
    from bam_tf.text_encoding import TextEncoder
    from bam_tf.trained_model import build_model, save_trained_model

    loaded = load_backbone("random:layers=2,hidden=32")
    model = MultiTaskBert(loaded.backbone, [glue_task(t) for t in tasks])
    build_model(model)
    # Small head weights (std 0.02, not the glorot scale of a fresh head) keep logits within the 1e-4 the
    # comparisons use: serving and in-process runs differ by float32 rounding in the pooled output
    # (≈1e-5 on the hostile NUL/zero-width row), which a head multiplies by its weights' scale.
    rng = np.random.default_rng(0)
    for head in model.heads.values():
        head.kernel.assign(rng.normal(0.0, 0.02, head.kernel.shape).astype(np.float32))
    encoder = TextEncoder(loaded.tokenizer, MAX_SEQ_LENGTH)
    save_trained_model(path, model, encoder, "random")
    return model, encoder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, encoder, export_dir, version dir): exported next to stale entries TF Serving must skip."""
    root = tmp_path_factory.mktemp("export")
    model_dir = str(root / "model")
    model, encoder = make_tiny_model_dir(model_dir, TASKS)
    export_dir = root / "export"
    (export_dir / "3").mkdir(parents=True)  # an older version: the next one is 4
    (export_dir / "7a").mkdir()  # not a version
    (export_dir / "9").write_text("a file, not a version")
    version_dir = export.export_saved_model(model, encoder, str(export_dir), source=model_dir)
    return model, encoder, model_dir, str(export_dir), version_dir


def test_auto_version_is_one_past_the_highest_numeric_folder(exported):
    _, _, _, export_dir, version_dir = exported
    assert version_dir == os.path.join(export_dir, "4")
    assert sorted(os.listdir(export_dir)) == ["3", "4", "7a", "9"]  # no temporary folder left behind
    assert export.existing_versions(export_dir) == [3, 4]
    assert export.next_version(export_dir) == 5
    assert export.next_version(os.path.join(export_dir, "missing")) == 1
    for name in ["saved_model.pb", "variables", os.path.join("assets.extra", export.EXPORT_METADATA)]:
        assert os.path.exists(os.path.join(version_dir, name)), name
    with open(os.path.join(version_dir, "assets.extra", export.EXPORT_METADATA), encoding="utf-8") as f:
        metadata = json.load(f)
    assert metadata["max_seq_length"] == MAX_SEQ_LENGTH
    assert [(t["task"], t["signature"], t["labels"]) for t in metadata["tasks"]] == [
        ("RTE", "rte", ["entailment", "not_entailment"]), ("STS-B", "sts_b", []), ("CoLA", "cola", ["0", "1"])]


def test_existing_version_is_an_error_and_writes_nothing(exported):
    _, _, model_dir, export_dir, version_dir = exported
    before = {p: os.path.getmtime(os.path.join(version_dir, p)) for p in os.listdir(version_dir)}
    result = subprocess.run([sys.executable, "-m", "bam_tf.export", f"--model_dir={model_dir}",
                             f"--export_dir={export_dir}", "--version=4"], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "already exists" in result.stderr and os.path.join(export_dir, "4") in result.stderr
    assert sorted(os.listdir(export_dir)) == ["3", "4", "7a", "9"]
    assert {p: os.path.getmtime(os.path.join(version_dir, p)) for p in os.listdir(version_dir)} == before
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_trained_model(model_dir, export_dir, version=3)


def test_an_export_dir_that_cannot_be_a_folder_is_an_error_before_loading(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    missing_model = str(tmp_path / "no_model")  # the export dir is checked first, before the model is read
    with pytest.raises(export.ExportError, match="is a file, not a folder"):
        export.export_trained_model(missing_model, str(a_file))
    with pytest.raises(export.ExportError, match="a_file is a file, so nothing can be made below it"):
        export.export_trained_model(missing_model, str(a_file / "export"), version=1)
    assert a_file.read_text() == "not a folder" and sorted(os.listdir(tmp_path)) == ["a_file"]


def test_help_explains_the_signatures():
    result = subprocess.run([sys.executable, "-m", "bam_tf.export", "--help"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode in (0, 1)  # absl exits 1 after --help
    for text in ["--model_dir", "--export_dir", "--version", "serving_default", "token_ids", "sentence2"]:
        assert text in result.stdout, text


def test_signature_names():
    assert [export.signature_name(t) for t in ["RTE", "STS-B", "SST-2", "MNLI", "MNLI-mm", "CoLA"]] == [
        "rte", "sts_b", "sst_2", "mnli", "mnli_mm", "cola"]


def test_run_dir_resolves_to_its_student(exported, tmp_path):
    _, _, model_dir, _, _ = exported
    assert export.resolve_model_dir(model_dir) == model_dir
    os.symlink(model_dir, tmp_path / "student")
    assert export.resolve_model_dir(str(tmp_path)) == str(tmp_path / "student")
    with pytest.raises(InputError, match="neither a trained model folder"):
        export.resolve_model_dir(str(tmp_path / "student" / "backbone"))


def _examples(task_name: str) -> TaskData:
    """Real dev examples (when GLUE_DIR has them) followed by the hostile strings."""
    task = glue_task(task_name)
    a = [h[0] for h in HOSTILE]
    b = [h[1] for h in HOSTILE] if task.is_pair else None
    if HAVE_GLUE:
        dev = read_split(GLUE_DIR, task, "dev", max_examples=DEV_EXAMPLES)
        a = dev.text_a + a
        b = dev.text_b + b if task.is_pair else None
    ids = [str(i) for i in range(len(a))]
    return TaskData(task, "dev", ids, a, b, None, ids, f"{task_name} dev + hostile")


def _reference_logits(model, encoder, data: TaskData) -> np.ndarray:
    """The evaluation path: length-sorted batches padded to their own longest row."""
    from bam_tf.evaluation import predict_head
    from bam_tf.text_encoding import encode_task_data

    return predict_head(model, encode_task_data(data, encoder), data.task.head, batch_size=256)


_ALL_HEADS = {}


def _all_heads(model, encoder, text_a, text_b):
    """Every head's logits from TextEncoder + model in one batch padded to max_seq_length (cached)."""
    key = (id(model), tuple(text_a), None if text_b is None else tuple(text_b))
    if key not in _ALL_HEADS:
        features = encoder(np.array(text_a, object), None if text_b is None else np.array(text_b, object))
        _ALL_HEADS[key] = {k: v.numpy() for k, v in model.inference_outputs(features).items()}
    return _ALL_HEADS[key]


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Runs every signature in a fresh tensorflow + tensorflow_text process; returns (outputs, inputs)."""
    model, encoder, _, _, version_dir = exported
    tmp = tmp_path_factory.mktemp("served")
    data = {name: _examples(name) for name in TASKS}
    calls = []
    for name, d in data.items():
        inputs = {"sentence1": d.text_a} | ({"sentence2": d.text_b} if d.text_b is not None else {})
        calls.append({"name": name, "signature": export.signature_name(name), "inputs": inputs})
    pairs = data["RTE"]
    calls.append({"name": "default", "signature": "serving_default",
                  "inputs": {"sentence1": pairs.text_a, "sentence2": pairs.text_b}})
    # token_ids: the client's own encoding, cut to the batch's longest row (any length <= max_seq_length).
    features = {k: v.numpy().astype(np.int32) for k, v in encoder(np.array(pairs.text_a, object),
                                                                   np.array(pairs.text_b, object)).items()}
    longest = int(features["padding_mask"].sum(axis=1).max())
    features = {k: v[:, :longest].tolist() for k, v in features.items()}
    calls.append({"name": "ids", "signature": "token_ids", "inputs": features})
    # Malformed requests a REST or gRPC client can send (the packer once read past the shorter batch).
    uneven = "sentence1 and sentence2 must hold the same number of sentences"
    calls += [{"name": "uneven_rte", "signature": "rte", "inputs": {"sentence1": ["a", "b"], "sentence2": ["x"]},
               "expect_error": uneven},
              {"name": "uneven_default", "signature": "serving_default",
               "inputs": {"sentence1": ["a"], "sentence2": ["x", "y", "z"]}, "expect_error": uneven},
              {"name": "ids_shapes", "signature": "token_ids", "expect_error": "segment_ids must have the shape",
               "inputs": {"token_ids": features["token_ids"], "padding_mask": features["padding_mask"],
                          "segment_ids": [row[:-1] for row in features["segment_ids"]]}},
              {"name": "ids_no_column", "signature": "token_ids", "expect_error": "needs at least one column",
               "inputs": {n: [] for n in ("token_ids", "segment_ids", "padding_mask")},
               "shapes": {n: [2, 0] for n in ("token_ids", "segment_ids", "padding_mask")}},
              {"name": "ids_empty", "signature": "token_ids", "expect_error": None,
               "inputs": {n: [] for n in ("token_ids", "segment_ids", "padding_mask")},
               "shapes": {n: [0, 0] for n in ("token_ids", "segment_ids", "padding_mask")}}]
    inputs_path, output_path = tmp / "inputs.json", tmp / "outputs.npz"
    inputs_path.write_text(json.dumps(calls), encoding="utf-8")
    script = tmp / "serve.py"
    script.write_text(SERVING_SCRIPT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", str(script), version_dir, str(inputs_path), str(output_path)],
                            capture_output=True, text=True, timeout=300, cwd=str(tmp), env=env)
    assert result.returncode == 0, result.stderr[-5000:]
    with np.load(output_path, allow_pickle=False) as outputs:
        return dict(outputs), data


def _check_task_outputs(outputs: dict, prefix: str, task, reference: np.ndarray):
    logits = outputs[prefix + "logits"]
    assert logits.dtype == np.float32 and logits.shape == reference.shape
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
    if task.is_regression:
        # The head trains on score / 5: the served score is 5 × its raw output, on GLUE's 0–5 scale.
        np.testing.assert_allclose(outputs[prefix + "score"], 5.0 * reference[:, 0], atol=5e-4, rtol=0)
        labels = outputs[prefix + "label"].astype(float)
        np.testing.assert_allclose(labels, np.clip(5.0 * reference[:, 0], 0, 5), atol=1.5e-3)
    else:
        exp = np.exp(reference - reference.max(axis=1, keepdims=True))
        np.testing.assert_allclose(outputs[prefix + "probabilities"], exp / exp.sum(axis=1, keepdims=True),
                                   atol=1e-4)
        # Near-ties could flip the argmax between the two runs: compare only clear decisions.
        clear = np.abs(reference[:, 0] - reference[:, 1]) > 1e-4 if reference.shape[1] == 2 else slice(None)
        expected = np.array(task.labels)[reference.argmax(axis=1)]
        assert outputs[prefix + "label"][clear].tolist() == expected[clear].tolist()
        assert set(outputs[prefix + "label"].tolist()) <= set(task.labels)


@pytest.mark.parametrize("task_name", TASKS)
def test_task_signature_matches_the_keras_model(exported, served, task_name):
    model, encoder = exported[:2]
    outputs, data = served
    prefixed = {k[len(task_name) + 1:]: v for k, v in outputs.items() if k.startswith(task_name + "/")}
    expected_keys = {"logits", "label", "score" if data[task_name].task.is_regression else "probabilities"}
    assert set(prefixed) == expected_keys
    assert len(prefixed["logits"]) == len(data[task_name]) == (DEV_EXAMPLES if HAVE_GLUE else 0) + len(HOSTILE)
    _check_task_outputs(prefixed, "", data[task_name].task, _reference_logits(model, encoder, data[task_name]))


def test_serving_default_scores_every_task(exported, served):
    model, encoder = exported[:2]
    outputs, data = served
    pairs = data["RTE"]
    default = {k[len("default/"):]: v for k, v in outputs.items() if k.startswith("default/")}
    assert set(default) == {"rte_logits", "rte_probabilities", "rte_label", "sts_b_logits", "sts_b_score",
                            "sts_b_label", "cola_logits", "cola_probabilities", "cola_label"}
    for name in TASKS:
        task = glue_task(name)
        # Single-sentence tasks see sentence1 alone, exactly as when they are scored on their own.
        reference = _all_heads(model, encoder, pairs.text_a, pairs.text_b if task.is_pair else None)[name]
        _check_task_outputs(default, export.signature_name(name) + "_", task, reference)


def test_token_ids_signature(exported, served):
    model, encoder = exported[:2]
    outputs, data = served
    ids = {k[len("ids/"):]: v for k, v in outputs.items() if k.startswith("ids/")}
    assert set(ids) == {"rte_logits", "sts_b_logits", "cola_logits"}
    pairs = data["RTE"]
    reference = _all_heads(model, encoder, pairs.text_a, pairs.text_b)
    for name in TASKS:
        np.testing.assert_allclose(ids[export.signature_name(name) + "_logits"], reference[name], atol=1e-4, rtol=0)


def test_malformed_requests_get_a_clear_error(served):
    outputs, _ = served
    for name, fragment in (("uneven_rte", "sentence1 and sentence2 must hold the same number of sentences"),
                           ("uneven_default", "sentence1 and sentence2 must hold the same number of sentences"),
                           ("ids_shapes", "segment_ids must have the shape of token_ids"),
                           ("ids_no_column", "needs at least one column")):
        assert fragment in str(outputs[name + "/error"]), (name, str(outputs[name + "/error"]))
    # An empty batch is no error, in whichever shape it comes.
    assert str(outputs["ids_empty/error"]) == "no error: " + repr(sorted(
        (f"{export.signature_name(task)}_logits", (0, width))
        for task, width in (("RTE", 2), ("STS-B", 1), ("CoLA", 2))))


@needs_glue
def test_real_dev_examples_were_served(served):
    outputs, data = served
    assert len(data["RTE"]) == DEV_EXAMPLES + len(HOSTILE)
    assert len(outputs["RTE/label"]) == DEV_EXAMPLES + len(HOSTILE)


def _saved_model_cli(*args, with_tensorflow_text=False):
    if with_tensorflow_text:
        # saved_model_cli loads no op libraries of its own; the same CLI entry point after
        # `import tensorflow_text` can run graphs that use the tokenizer ops.
        command = [sys.executable, "-c", "import sys, tensorflow_text; from tensorflow.python.tools.saved_model_cli "
                   "import main; sys.argv[0] = 'saved_model_cli'; sys.exit(main())", *args]
    else:
        command = [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    return result.stdout


def test_saved_model_cli_show_lists_the_signatures(exported):
    out = _saved_model_cli("show", "--all", "--dir", exported[-1])
    for name in ["rte", "sts_b", "cola", "serving_default", "token_ids"]:
        assert f"signature_def['{name}']" in out, name
    for name in ["sts_b_score", "rte_probabilities", "cola_label"]:
        assert f"outputs['{name}']" in out, name


def test_saved_model_cli_run_feeds_strings(exported):
    out = _saved_model_cli("run", "--dir", exported[-1], "--tag_set", "serve", "--signature_def", "rte",
                           "--input_exprs", 'sentence1=["a"];sentence2=["b"]', with_tensorflow_text=True)
    assert "Result for output key label" in out and "Result for output key probabilities" in out
    assert "entailment" in out
