"""python tools/serving_client.py --task=rte --sentence1=... --sentence2=... --format=rest_instances|rest_inputs|grpc

Builds a TensorFlow Serving predict request for a model exported by `python -m bam_tf.export` and prints
it; with --url it sends it and prints the answer (bam_tf.serving_client). Repeat --sentence1/--sentence2
for a batch.

  --format=rest_instances  JSON for POST http://HOST:8501/v1/models/<model_name>:predict, row format:
                           {"signature_name": "rte", "instances": [{"sentence1": ..., "sentence2": ...}]}
  --format=rest_inputs     the same request in columnar format:
                           {"signature_name": "rte", "inputs": {"sentence1": [...], "sentence2": [...]}}
  --format=grpc            a tensorflow_serving PredictRequest for PredictionService/Predict on HOST:8500

--task names a task signature (rte, sts_b, cola, ... or the GLUE name: RTE, STS-B); --task=all uses
serving_default (every head at once; single-sentence tasks ignore sentence2, which defaults to "").
A task of your own (--task_defs at training) is named the same way: --task=review-stars or review_stars.
--export_dir (the folder the server serves, as given to `python -m bam_tf.export`) checks the task and its
inputs against what that export serves before sending: your own tasks' pairs too, which the client cannot
know otherwise.
--url: REST: http://HOST:8501 (the :predict path is added) or a full :predict URL; gRPC: HOST:8500.
"""

import json
import sys

from absl import app, flags

from bam_tf.cli_help import flag_error, parse_flags
from bam_tf.serving_client import FORMATS, ServingError, build_request, send_request
from bam_tf.user_errors import InputError

flags.DEFINE_string("task", None, "Task signature (rte, sts_b, cola; GLUE names and your own tasks' names "
                    "work too), or 'all' for serving_default.")
flags.DEFINE_multi_string("sentence1", None, "First sentence; repeat for a batch.")
flags.DEFINE_multi_string("sentence2", None, "Second sentence of a pair task; one per --sentence1.")
flags.DEFINE_enum("format", "rest_instances", FORMATS, "Request format.")
flags.DEFINE_string("model_name", "bam", "--model_name the server was started with.")
flags.DEFINE_integer("model_version", None, "Ask for this version (default: the server's latest); with "
                     "--export_dir, check against that version too (default: the export's newest).")
flags.DEFINE_string("export_dir", None, "The export the server serves (or one version folder of it): check "
                    "--task and the sentences against the tasks it describes before sending.")
flags.DEFINE_string("url", None, "Send the request: REST http://HOST:8501 (or a full :predict URL); "
                    "gRPC HOST:8500. Without it the request is only printed.")
flags.DEFINE_boolean("print", False, "Print the request even when sending it.")
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the server.")
flags.mark_flags_as_required(["task", "sentence1"])
FLAGS = flags.FLAGS


def main(argv) -> int:
    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        request = build_request(FLAGS.format, FLAGS.task, FLAGS.sentence1, FLAGS.sentence2, FLAGS.model_name,
                                FLAGS.model_version, FLAGS.export_dir)
        if FLAGS.url is None or FLAGS["print"].value:
            print(json.dumps(request, indent=2, ensure_ascii=False) if FLAGS.format != "grpc" else request)
        if FLAGS.url is None:
            return 0
        response = send_request(FLAGS.format, request, FLAGS.url, FLAGS.model_name, FLAGS.model_version,
                                FLAGS.timeout)
    except (InputError, ServingError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
