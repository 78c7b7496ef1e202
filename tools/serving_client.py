"""python tools/serving_client.py --task=rte --sentence1=... --sentence2=... --format=rest_instances|rest_inputs|grpc

Builds a TensorFlow Serving predict request for a model exported by `python -m bam_tf.export` and prints
it; with --url it sends it and prints the answer. Repeat --sentence1/--sentence2 for a batch.

  --format=rest_instances  JSON for POST http://HOST:8501/v1/models/<model_name>:predict, row format:
                           {"signature_name": "rte", "instances": [{"sentence1": ..., "sentence2": ...}]}
  --format=rest_inputs     the same request in columnar format:
                           {"signature_name": "rte", "inputs": {"sentence1": [...], "sentence2": [...]}}
  --format=grpc            a tensorflow_serving PredictRequest for PredictionService/Predict on HOST:8500

--task names a task signature (rte, sts_b, cola, ... or the GLUE name: RTE, STS-B); --task=all uses
serving_default (every head at once; single-sentence tasks ignore sentence2, which defaults to "").
--url: REST: http://HOST:8501 (the :predict path is added) or a full :predict URL; gRPC: HOST:8500.
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bam_tf.glue_tasks import get_task  # noqa: E402  (the registry: stdlib only, no TensorFlow)

FORMATS = ("rest_instances", "rest_inputs", "grpc")
ALL_TASKS = ("all", "serving_default")


def signature_name(task_name: str) -> str:
    """Same rule as bam_tf.export.signature_name: "STS-B" -> "sts_b"."""
    return re.sub(r"[^a-z0-9]", "_", task_name.lower())


def signature_inputs(task: str, sentence1: list[str], sentence2: list[str] | None) -> tuple[str, dict]:
    """(signature name, {input name: list of strings}) for a task, checked against the registry."""
    if not sentence1:
        raise ValueError("give at least one --sentence1")
    if sentence2 is not None and len(sentence2) != len(sentence1):
        raise ValueError(f"{len(sentence1)} --sentence1 but {len(sentence2)} --sentence2; give one of each per row")
    if task.lower() in ALL_TASKS:
        return "serving_default", {"sentence1": list(sentence1),
                                   "sentence2": list(sentence2) if sentence2 is not None else [""] * len(sentence1)}
    glue_task = get_task(task)
    if glue_task.is_pair:
        if sentence2 is None:
            raise ValueError(f"{glue_task.name} is a sentence-pair task: give --sentence2 as well")
        return signature_name(glue_task.name), {"sentence1": list(sentence1), "sentence2": list(sentence2)}
    if sentence2 is not None:
        raise ValueError(f"{glue_task.name} is a single-sentence task: leave out --sentence2 (or use --task=all)")
    return signature_name(glue_task.name), {"sentence1": list(sentence1)}


def rest_instances_payload(signature: str, inputs: dict) -> dict:
    """Row format: one object per example, keyed by input name."""
    rows = len(next(iter(inputs.values())))
    return {"signature_name": signature,
            "instances": [{name: values[i] for name, values in inputs.items()} for i in range(rows)]}


def rest_inputs_payload(signature: str, inputs: dict) -> dict:
    """Columnar format: one list per input."""
    return {"signature_name": signature, "inputs": {name: list(values) for name, values in inputs.items()}}


def predict_url(url: str, model_name: str, model_version: int | None = None) -> str:
    if url.rstrip("/").endswith(":predict"):
        return url
    version = f"/versions/{model_version}" if model_version is not None else ""
    return f"{url.rstrip('/')}/v1/models/{model_name}{version}:predict"


def grpc_request(signature: str, inputs: dict, model_name: str, model_version: int | None = None):
    """A tensorflow_serving.apis.predict_pb2.PredictRequest with one DT_STRING [batch] tensor per input."""
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if model_version is not None:
        request.model_spec.version.value = model_version
    for name, values in inputs.items():
        array = np.array([v.encode("utf-8") for v in values], dtype=object)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=tf.string, shape=[len(values)]))
    return request


def send_rest(url: str, payload: dict, timeout: float = 30.0) -> dict:
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def send_grpc(target: str, request, timeout: float = 30.0) -> dict:
    """Sends a PredictRequest; returns {output name: nested list} (strings decoded from UTF-8)."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
    return {name: _jsonable(tf.make_ndarray(proto)) for name, proto in sorted(response.outputs.items())}


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if value.dtype == object:
        return [_jsonable(v) for v in value] if value.ndim else value.item().decode("utf-8")
    return value.tolist()


def build_request(fmt: str, task: str, sentence1: list[str], sentence2: list[str] | None, model_name: str = "bam",
                  model_version: int | None = None):
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    signature, inputs = signature_inputs(task, sentence1, sentence2)
    if fmt == "rest_instances":
        return rest_instances_payload(signature, inputs)
    if fmt == "rest_inputs":
        return rest_inputs_payload(signature, inputs)
    return grpc_request(signature, inputs, model_name, model_version)


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("task", None, "Task signature (rte, sts_b, cola; GLUE names work too), or 'all' for "
                        "serving_default.")
    flags.DEFINE_multi_string("sentence1", None, "First sentence; repeat for a batch.")
    flags.DEFINE_multi_string("sentence2", None, "Second sentence of a pair task; one per --sentence1.")
    flags.DEFINE_enum("format", "rest_instances", FORMATS, "Request format.")
    flags.DEFINE_string("model_name", "bam", "--model_name the server was started with.")
    flags.DEFINE_integer("model_version", None, "Ask for this version (default: the server's latest).")
    flags.DEFINE_string("url", None, "Send the request: REST http://HOST:8501 (or a full :predict URL); "
                        "gRPC HOST:8500. Without it the request is only printed.")
    flags.DEFINE_boolean("print", False, "Print the request even when sending it.")
    flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the server.")
    flags.mark_flags_as_required(["task", "sentence1"])


def main(argv) -> int:
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    FLAGS = flags.FLAGS
    try:
        request = build_request(FLAGS.format, FLAGS.task, FLAGS.sentence1, FLAGS.sentence2, FLAGS.model_name,
                                FLAGS.model_version)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    is_rest = FLAGS.format != "grpc"
    if FLAGS.url is None or FLAGS["print"].value:
        print(json.dumps(request, indent=2, ensure_ascii=False) if is_rest else request)
    if FLAGS.url is None:
        return 0
    try:
        if is_rest:
            response = send_rest(predict_url(FLAGS.url, FLAGS.model_name, FLAGS.model_version), request,
                                 FLAGS.timeout)
        else:
            response = send_grpc(FLAGS.url, request, FLAGS.timeout)
    except urllib.error.HTTPError as error:  # TF Serving explains in a JSON body: {"error": "..."}
        print(f"error: HTTP {error.code} from {error.url}: {error.read().decode('utf-8', 'replace')}",
              file=sys.stderr)
        return 1
    except OSError as error:  # connection refused, timeout, unknown host
        print(f"error: cannot reach {FLAGS.url}: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # grpc.RpcError (grpc is only imported for --format=grpc)
        if type(error).__module__.startswith("grpc"):
            print(f"error: gRPC {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
        raise
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
