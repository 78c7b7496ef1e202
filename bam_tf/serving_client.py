"""TensorFlow Serving requests for a model exported by `python -m bam_tf.export`: built, and sent.

  rest_instances  JSON for POST http://HOST:8501/v1/models/<model_name>:predict, row format:
                  {"signature_name": "rte", "instances": [{"sentence1": ..., "sentence2": ...}]}
  rest_inputs     the same request in columnar format:
                  {"signature_name": "rte", "inputs": {"sentence1": [...], "sentence2": [...]}}
  grpc            a tensorflow_serving PredictRequest for PredictionService/Predict on HOST:8500

A task names its signature (rte, sts_b, cola, ... or the GLUE name: RTE, STS-B; MNLI-mm and AX are sent to
MNLI's, whose head predicts them); "all" uses
serving_default (every head at once; single-sentence tasks ignore sentence2, which defaults to "").
A task of the user's own (trained with --task_defs) is named the same way (review-stars or review_stars).
Given the export's folder (export_dir: the folder TF Serving serves, or one version in it), the task and
its inputs are checked against the tasks the export describes (<version>/assets.extra/bam_export.json,
written by bam_tf.export) before anything is sent; without it GLUE tasks are checked against GLUE's, and a
task of the user's own is sent as given (the server then checks its inputs and answers a misspelt name with
an unknown signature).
REST urls: http://HOST:8501 (the :predict path is added) or a full :predict URL; gRPC: HOST:8500.
Command line: `python tools/serving_client.py`. TensorFlow is imported for gRPC only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.parse
import urllib.request

from bam_tf.export import EXPORT_METADATA, existing_versions
from bam_tf.task_set import glue_task
from bam_tf.task import normalized_name, task_slug
from bam_tf.user_errors import InputError

FORMATS = ("rest_instances", "rest_inputs", "grpc")
ALL_TASKS = ("all", "serving_default")


signature_name = task_slug  # the export's rule (bam_tf.export.signature_name): "STS-B" -> "sts_b"


@dataclasses.dataclass(frozen=True)
class ExportDescription:
    """What an export (bam_tf.export) says it serves: one version folder's bam_export.json."""

    folder: str  # the version folder read
    tasks: tuple[dict, ...]  # its entries: task, signature, is_pair, labels, ...

    def find(self, task: str) -> dict | None:
        """The entry of `task`, named as training names tasks (case and punctuation ignored)."""
        return next((e for e in self.tasks if normalized_name(e["task"]) == normalized_name(task)), None)


def read_export_description(export_dir: str, version: int | None = None) -> ExportDescription:
    """`export_dir` is a version folder (it holds saved_model.pb) or the folder of versions, where `version`
    (default: the newest, as TF Serving serves it) is read."""
    folder = os.path.expanduser(export_dir)  # as bam_tf.export expands it
    if os.path.isfile(folder):
        raise InputError(f"--export_dir={export_dir} is a file; give the folder the server serves")
    if os.path.isfile(os.path.join(folder, "saved_model.pb")):
        if version is not None and os.path.basename(os.path.normpath(folder)) != str(version):
            raise InputError(f"--export_dir={export_dir} is one version folder, not version {version}; give the "
                             "folder of versions (or that version's folder) to check what --model_version serves")
    else:
        versions = existing_versions(folder)
        if not versions:
            raise InputError(f"--export_dir={export_dir}: " + ("no such folder" if not os.path.isdir(folder) else
                             "neither a SavedModel (saved_model.pb) nor a folder of numbered versions"))
        if version is not None and version not in versions:
            raise InputError(f"--export_dir={export_dir} has no version {version}; it has "
                             f"{', '.join(map(str, versions))}")
        folder = os.path.join(folder, str(version if version is not None else versions[-1]))
    path = os.path.join(folder, "assets.extra", EXPORT_METADATA)
    try:
        with open(path, encoding="utf-8") as f:
            tasks = tuple(json.load(f)["tasks"])
        for entry in tasks:
            if not (isinstance(entry["task"], str) and isinstance(entry["signature"], str)
                    and isinstance(entry["is_pair"], bool)):
                raise TypeError(f"a task entry's task, signature and is_pair: {entry}")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; is {folder} exported by `python -m bam_tf.export`?") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not an export description of bam_tf.export ({error})") from None
    return ExportDescription(folder, tasks)


def _resolve_task(task: str, export: ExportDescription | None) -> tuple[str, str, bool] | None:
    """(the task's name, its signature, whether it takes pairs), from the export's description if given, else
    from GLUE's tasks; None for a task of the user's own without a description. MNLI-mm and AX are served
    by MNLI's signature, as their predictions come from MNLI's head."""
    try:
        glue = glue_task(task)
    except InputError:
        glue = None
    if export is None:
        return (glue.name, signature_name(glue.head), glue.is_pair) if glue is not None else None
    entry = export.find(glue.head if glue is not None else task)
    if entry is None:
        served = ", ".join(e["task"] for e in export.tasks)
        raise InputError(f"--task={task}: {export.folder} serves no such task; it serves {served}, or 'all'")
    return (glue.name if glue is not None else entry["task"]), entry["signature"], entry["is_pair"]


def signature_inputs(task: str, sentence1: list[str], sentence2: list[str] | None,
                     export: ExportDescription | None = None) -> tuple[str, dict]:
    """(signature name, {input name: list of strings}) for a task, checked against the export's description
    of it or, without one, against GLUE's task of that name."""
    if not sentence1:
        raise InputError("give at least one --sentence1")
    if sentence2 is not None and len(sentence2) != len(sentence1):
        raise InputError(f"{len(sentence1)} --sentence1 but {len(sentence2)} --sentence2; give one of each per row")
    if task.lower() in ALL_TASKS:
        return "serving_default", {"sentence1": list(sentence1),
                                   "sentence2": list(sentence2) if sentence2 is not None else [""] * len(sentence1)}
    found = _resolve_task(task, export)
    if found is None:  # a task of the user's own: its signature is its slug (bam_tf.export), its inputs as given
        return signature_name(task), ({"sentence1": list(sentence1)} if sentence2 is None else
                                      {"sentence1": list(sentence1), "sentence2": list(sentence2)})
    name, signature, is_pair = found
    if is_pair:
        if sentence2 is None:
            raise InputError(f"{name} is a sentence-pair task: give --sentence2 as well")
        return signature, {"sentence1": list(sentence1), "sentence2": list(sentence2)}
    if sentence2 is not None:
        raise InputError(f"{name} is a single-sentence task: leave out --sentence2 (or use --task=all)")
    return signature, {"sentence1": list(sentence1)}


def rest_instances_payload(signature: str, inputs: dict) -> dict:
    """Row format: one object per example, keyed by input name."""
    rows = len(next(iter(inputs.values())))
    return {"signature_name": signature,
            "instances": [{name: values[i] for name, values in inputs.items()} for i in range(rows)]}


def rest_inputs_payload(signature: str, inputs: dict) -> dict:
    """Columnar format: one list per input."""
    return {"signature_name": signature, "inputs": {name: list(values) for name, values in inputs.items()}}


def predict_url(url: str, model_name: str, model_version: int | None = None) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed host or port ("http://[bad", "http://host:port")
        valid = False
    if not valid:
        hint = f"; did you mean http://{url}?" if "://" not in url else ""
        raise InputError(f"--url={url}: a REST url is http://HOST:PORT (or a full :predict URL){hint}")
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
                  model_version: int | None = None, export_dir: str | None = None):
    """The request for `fmt`; with `export_dir`, checked against the tasks that export serves (its version
    `model_version`, else the newest)."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    export = read_export_description(export_dir, model_version) if export_dir is not None else None
    signature, inputs = signature_inputs(task, sentence1, sentence2, export)
    if fmt == "rest_instances":
        return rest_instances_payload(signature, inputs)
    if fmt == "rest_inputs":
        return rest_inputs_payload(signature, inputs)
    return grpc_request(signature, inputs, model_name, model_version)


class ServingError(RuntimeError):
    """The server could not be reached or refused the request; the message says which and why."""


def send_request(fmt: str, request, url: str, model_name: str = "bam", model_version: int | None = None,
                 timeout: float = 30.0) -> dict:
    """Send what build_request(fmt, ...) returned to the server at `url`; its answer as JSON-able values."""
    if not timeout > 0:
        raise InputError(f"--timeout={timeout}: give the seconds to wait, more than 0")
    try:
        if fmt != "grpc":
            return send_rest(predict_url(url, model_name, model_version), request, timeout)
        return send_grpc(url, request, timeout)
    except urllib.error.HTTPError as error:  # TF Serving explains in a JSON body: {"error": "..."}
        raise ServingError(f"HTTP {error.code} from {error.url}: {error.read().decode('utf-8', 'replace')}") from None
    except OSError as error:  # connection refused, timeout, unknown host
        raise ServingError(f"cannot reach {url}: {error}") from None
    except Exception as error:  # grpc.RpcError (grpc is only imported for --format=grpc)
        if type(error).__module__.startswith("grpc"):
            raise ServingError(f"gRPC {error.code().name}: {error.details()}") from None
        raise
