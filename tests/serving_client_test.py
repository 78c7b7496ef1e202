"""bam_tf.serving_client and tools/serving_client.py: the REST and gRPC requests carry exactly the inputs a
direct signature call gets.

The exported tiny model is loaded in-process and each payload is mapped to signature inputs the way TF
Serving maps them (row format: stack each named input over the instances; columnar: one list per input).
The send path is exercised against stand-in servers on 127.0.0.1 that answer from the same SavedModel.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from concurrent import futures

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (tokenizer ops of the exported graph)

from bam_tf import export
from bam_tf import serving_client as client

from support import ROOT

SCRIPT = os.path.join(ROOT, "tools", "serving_client.py")

S1 = ["A man is playing a guitar.", "Ça coûte 10 € 👍🏽", "", "机器学习"]
S2 = ["Someone plays music.", "naïve café", "", "東京"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(export dir, its version folder) of a tiny model with RTE, CoLA and a pair task of the user's own."""
    from bam_tf.backbone import load_backbone
    from bam_tf.task_defs import load_task_definitions
    from bam_tf.task_set import glue_task
    from bam_tf.model import MultiTaskBert
    from bam_tf.text_encoding import TextEncoder
    from bam_tf.trained_model import build_model

    root = tmp_path_factory.mktemp("client")
    (root / "train.tsv").write_text("a\tb\tyes\nc\td\tno\n")
    (root / "tasks.yaml").write_text(
        "tasks:\n  - name: same-meaning\n    files: {train: train.tsv, dev: train.tsv}\n"
        "    text_a: 0\n    text_b: 1\n    label: 2\n    labels: ['no', 'yes']\n    metrics: [accuracy]\n")
    (own,) = load_task_definitions(str(root / "tasks.yaml"))
    loaded = load_backbone("random:layers=2,hidden=32")
    model = MultiTaskBert(loaded.backbone, [glue_task("RTE"), glue_task("CoLA"), own])
    build_model(model)
    version_dir = export.export_saved_model(model, TextEncoder(loaded.tokenizer, 32), str(root / "export"))
    return str(root / "export"), version_dir


@pytest.fixture(scope="module")
def signatures(exported):
    return tf.saved_model.load(exported[1]).signatures


def tf_serving_inputs(payload: dict) -> dict:
    """The signature inputs TF Serving's REST API builds from a :predict body."""
    if "instances" in payload:
        rows = payload["instances"]
        names = list(rows[0])
        assert all(list(row) == names for row in rows), "every instance must name the same inputs"
        return {name: tf.constant([row[name] for row in rows], tf.string) for name in names}
    return {name: tf.constant(values, tf.string) for name, values in payload["inputs"].items()}


def direct_outputs(signatures, signature, **inputs):
    return {k: v.numpy() for k, v in signatures[signature](**{n: tf.constant(v, tf.string)
                                                              for n, v in inputs.items()}).items()}


def assert_same_outputs(actual: dict, expected: dict):
    assert set(actual) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(np.asarray(actual[name]), value, err_msg=name)


@pytest.mark.parametrize("fmt", ["rest_instances", "rest_inputs"])
@pytest.mark.parametrize("task,inputs", [("rte", {"sentence1": S1, "sentence2": S2}), ("CoLA", {"sentence1": S1}),
                                         ("all", {"sentence1": S1, "sentence2": S2})])
def test_rest_payload_gives_the_direct_outputs(signatures, fmt, task, inputs):
    payload = json.loads(json.dumps(client.build_request(fmt, task, inputs["sentence1"], inputs.get("sentence2"))))
    signature = "serving_default" if task == "all" else task.lower()
    assert payload["signature_name"] == signature
    assert ("instances" if fmt == "rest_instances" else "inputs") in payload
    served = {k: v.numpy() for k, v in signatures[signature](**tf_serving_inputs(payload)).items()}
    assert_same_outputs(served, direct_outputs(signatures, signature, **inputs))


def test_rest_instances_shape():
    payload = client.build_request("rest_instances", "RTE", ["a", "b"], ["c", "d"])
    assert payload == {"signature_name": "rte", "instances": [{"sentence1": "a", "sentence2": "c"},
                                                              {"sentence1": "b", "sentence2": "d"}]}
    assert client.build_request("rest_inputs", "all", ["a"], None) == {
        "signature_name": "serving_default", "inputs": {"sentence1": ["a"], "sentence2": [""]}}


def test_grpc_request_decodes_to_the_same_inputs():
    request = client.build_request("grpc", "rte", S1, S2, model_name="bam", model_version=3)
    assert request.model_spec.name == "bam" and request.model_spec.signature_name == "rte"
    assert request.model_spec.version.value == 3
    assert set(request.inputs) == {"sentence1", "sentence2"}
    for name, expected in [("sentence1", S1), ("sentence2", S2)]:
        array = tf.make_ndarray(request.inputs[name])
        assert request.inputs[name].dtype == tf.string.as_datatype_enum and array.shape == (len(expected),)
        assert [v.decode("utf-8") for v in array] == expected


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="sentence-pair task"):
        client.build_request("rest_inputs", "rte", ["a"], None)
    with pytest.raises(ValueError, match="single-sentence task"):
        client.build_request("rest_inputs", "cola", ["a"], ["b"])
    with pytest.raises(ValueError, match="one of each per row"):
        client.build_request("rest_inputs", "rte", ["a", "b"], ["c"])


def test_a_task_of_the_users_own_is_sent_to_its_signature_with_the_inputs_given():
    assert client.build_request("rest_inputs", "review-stars", ["a"], None) == {
        "signature_name": "review_stars", "inputs": {"sentence1": ["a"]}}
    assert client.build_request("rest_instances", "Paraphrase", ["a"], ["b"]) == {
        "signature_name": "paraphrase", "instances": [{"sentence1": "a", "sentence2": "b"}]}


def test_with_the_export_a_task_and_its_inputs_are_checked_against_what_it_serves(exported):
    export_dir, version_dir = exported
    for where in (export_dir, version_dir):  # the folder of versions or one version
        for name in ("same_meaning", "SameMeaning"):  # named as training names tasks
            assert client.build_request("rest_inputs", name, ["a"], ["b"], export_dir=where) == {
                "signature_name": "same_meaning", "inputs": {"sentence1": ["a"], "sentence2": ["b"]}}
    with pytest.raises(ValueError, match="same-meaning is a sentence-pair task: give --sentence2"):
        client.build_request("rest_inputs", "Same-Meaning", ["a"], None, export_dir=export_dir)
    with pytest.raises(ValueError, match="CoLA is a single-sentence task"):
        client.build_request("rest_inputs", "cola", ["a"], ["b"], export_dir=export_dir)
    with pytest.raises(ValueError, match=r"--task=sst-2: .*/1 serves no such task; it serves RTE, CoLA, "
                                         r"same-meaning, or 'all'$"):
        client.build_request("rest_inputs", "sst-2", ["a"], None, export_dir=export_dir)
    assert client.build_request("rest_inputs", "all", ["a"], None, export_dir=export_dir)["signature_name"] == \
        "serving_default"
    assert client.build_request("grpc", "rte", ["a"], ["b"], model_version=1,
                                export_dir=export_dir).model_spec.signature_name == "rte"
    with pytest.raises(ValueError, match=r"--export_dir=.* has no version 4; it has 1$"):
        client.build_request("rest_inputs", "rte", ["a"], ["b"], model_version=4, export_dir=export_dir)
    with pytest.raises(ValueError, match=r"is one version folder, not version 2"):
        client.build_request("rest_inputs", "rte", ["a"], ["b"], model_version=2, export_dir=version_dir)


def test_the_newest_version_is_checked_unless_another_is_asked_for(exported, tmp_path):
    export_dir = tmp_path / "export"
    shutil.copytree(exported[0], export_dir)
    newer = export_dir / "2" / "assets.extra"
    newer.mkdir(parents=True)
    description = json.loads((export_dir / "1" / "assets.extra" / "bam_export.json").read_text())
    description["tasks"] = [t for t in description["tasks"] if t["task"] == "RTE"]
    (newer / "bam_export.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"/2 serves no such task; it serves RTE, or 'all'$"):
        client.build_request("rest_inputs", "cola", ["a"], None, export_dir=str(export_dir))
    assert client.build_request("rest_inputs", "cola", ["a"], None, model_version=1,
                                export_dir=str(export_dir))["signature_name"] == "cola"


def test_mnli_mm_and_ax_go_to_mnlis_signature():
    export = client.ExportDescription("export/1", ({"task": "MNLI", "signature": "mnli", "is_pair": True},))
    for task in ("MNLI-mm", "mnli-m", "AX"):
        assert client.signature_inputs(task, ["a"], ["b"])[0] == "mnli"
        assert client.signature_inputs(task, ["a"], ["b"], export)[0] == "mnli"


def test_a_folder_that_is_not_an_export_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        client.read_export_description(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="neither a SavedModel"):
        client.read_export_description(str(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; give the folder the server serves"):
        client.read_export_description(str(tmp_path / "file"))
    (tmp_path / "2").mkdir()
    with pytest.raises(ValueError, match=r"2/assets.extra/bam_export.json: no such file; is .*/2 exported by"):
        client.read_export_description(str(tmp_path))
    (tmp_path / "2" / "assets.extra").mkdir()
    for broken in ('{"tasks": [{"task": "RTE"}]}', '{"tasks": [{"task": "RTE", "signature": "rte"}]}',
                   '{"tasks": [{"task": "RTE", "signature": "rte", "is_pair": "yes"}]}', "[1]", "{"):
        (tmp_path / "2" / "assets.extra" / "bam_export.json").write_text(broken)
        with pytest.raises(ValueError, match="not an export description of bam_tf.export"):
            client.read_export_description(str(tmp_path))


def _jsonable(value):
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.tolist() if isinstance(value, np.ndarray) else value


@pytest.fixture
def rest_server(signatures):
    """A stand-in for tensorflow_model_server's REST API on 127.0.0.1, answering from the SavedModel."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, payload))
            outputs = {k: _jsonable(v.numpy())
                       for k, v in signatures[payload["signature_name"]](**tf_serving_inputs(payload)).items()}
            if "instances" in payload:
                body = {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(len(payload["instances"]))]}
            else:
                body = {"outputs": outputs}
            data = json.dumps(body).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_cli_prints_the_payload_by_default():
    result = subprocess.run([sys.executable, SCRIPT, "--task=rte", "--sentence1=Ça coûte 10 €", "--sentence2=b",
                             "--format=rest_inputs"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"signature_name": "rte",
                                         "inputs": {"sentence1": ["Ça coûte 10 €"], "sentence2": ["b"]}}


def test_cli_checks_against_the_export_given(exported):
    result = subprocess.run([sys.executable, SCRIPT, "--task=same-meaning", "--sentence1=a",
                             f"--export_dir={exported[0]}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == ("error: same-meaning is a sentence-pair task: "
                                                      "give --sentence2 as well")


def test_cli_sends_rest_and_prints_the_answer(signatures, rest_server):
    url, seen = rest_server
    result = subprocess.run([sys.executable, SCRIPT, "--task=rte", f"--sentence1={S1[1]}", f"--sentence2={S2[1]}",
                             "--sentence1=a", "--sentence2=b", "--format=rest_instances", f"--url={url}",
                             "--model_name=bam"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert seen[0][0] == "/v1/models/bam:predict"
    predictions = json.loads(result.stdout)["predictions"]
    expected = direct_outputs(signatures, "rte", sentence1=[S1[1], "a"], sentence2=[S2[1], "b"])
    assert [p["label"] for p in predictions] == [v.decode() for v in expected["label"]]
    np.testing.assert_allclose([p["logits"] for p in predictions], expected["logits"], atol=1e-6)


def test_send_rest_columnar(signatures, rest_server):
    url, _ = rest_server
    payload = client.build_request("rest_inputs", "all", S1, S2)
    outputs = client.send_rest(client.predict_url(url, "bam", 2), payload)["outputs"]
    assert_same_outputs({k: np.array(v) for k, v in outputs.items() if not k.endswith("_label")},
                        {k: v for k, v in direct_outputs(signatures, "serving_default", sentence1=S1,
                                                         sentence2=S2).items() if not k.endswith("_label")})


def test_send_grpc(signatures):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for name, value in signatures[request.model_spec.signature_name](**inputs).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        response = client.send_grpc(f"127.0.0.1:{port}", client.build_request("grpc", "cola", S1, None), timeout=120)
    finally:
        server.stop(grace=None)
    expected = direct_outputs(signatures, "cola", sentence1=S1)
    assert response["label"] == [v.decode() for v in expected["label"]]
    np.testing.assert_allclose(response["probabilities"], expected["probabilities"], atol=1e-6)


def test_an_unreachable_server_is_a_serving_error():
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    payload = client.build_request("rest_inputs", "cola", ["a"], None)
    with pytest.raises(client.ServingError, match=f"cannot reach http://127.0.0.1:{port}"):
        client.send_request("rest_inputs", payload, f"http://127.0.0.1:{port}", timeout=5)


def test_a_malformed_url_or_timeout_is_an_input_error_before_sending():
    payload = client.build_request("rest_inputs", "cola", ["a"], None)
    for url, fragment in (("localhost:8501", "did you mean http://localhost:8501?"), ("notaurl", "http://HOST:PORT"),
                          ("http://[bad", "http://HOST:PORT"), ("http://host:port", "http://HOST:PORT"),
                          ("ftp://host:21", "http://HOST:PORT"), ("http://", "http://HOST:PORT")):
        with pytest.raises(client.InputError, match=re.escape(fragment)):
            client.send_request("rest_inputs", payload, url, timeout=5)
    assert client.predict_url("https://h:8501/", "bam", 3) == "https://h:8501/v1/models/bam/versions/3:predict"
    for timeout in (0, -1, float("nan")):
        with pytest.raises(client.InputError, match="--timeout"):
            client.send_request("rest_inputs", payload, "http://127.0.0.1:9", timeout=timeout)


def test_an_export_dir_under_a_tilde_is_read_as_the_exporter_wrote_it(exported, monkeypatch):
    export_dir, version_dir = exported
    monkeypatch.setenv("HOME", os.path.dirname(export_dir))
    assert client.read_export_description("~/export").folder == os.path.join(os.path.expanduser("~/export"), "1")
