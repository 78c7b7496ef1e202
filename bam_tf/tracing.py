"""TensorFlow's retracing warning, kept for real retracing only.

TF's detector counts traces per function *code*, across objects and closures: a function that is traced
exactly once per model or per training stage (a fixed input signature, or one trace per stage's input
spec) is reported as "5 out of the last 5 calls ... triggered tf.function retracing" as soon as a run
has built five models or stages (five teachers, the loaded teachers, the student). Those warnings name
retracing that never happened; the functions that trace that way register here and only their
warnings are dropped. Tests check each one traces once per model or stage.
"""

import logging

_ONCE_PER_OWNER: set[str] = set()


class _OncePerOwnerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # TF names a plain function "<function NAME at 0x…>" and a method "<bound method NAME of <…>>"
        return not ("triggered tf.function retracing" in message
                    and any(f"<function {name} at " in message or f"<bound method {name} of " in message
                            for name in _ONCE_PER_OWNER))


def traced_once_per_owner(qualified_name: str) -> None:
    """Declare that the tf.function of `qualified_name` (e.g. "MultiTaskBert._inference") traces once per
    object or stage that owns it, so TF's cross-object count of its traces is no sign of retracing."""
    _ONCE_PER_OWNER.add(qualified_name)


logging.getLogger("tensorflow").addFilter(_OncePerOwnerFilter())
