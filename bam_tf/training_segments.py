"""What each process that trained a stage ran in: a stage resumed on another machine may compute the rest of
its steps in another precision (`--precision=auto` decides per machine) or on other hardware.

A segment is one process's part of a stage: the step it started at and its context (precision, device).
The segments are recorded beside the checkpoints, before the first checkpoint each process writes, so no
checkpoint lies there without the segment that trained it; a process killed before its first checkpoint
left nothing behind and is not recorded. The stage's training_summary.json lists them ("segments"; its
"precision" and "device" stay those of the last process, which computed the dev scores); an experiment's
results line describes them (`trained_in`), so its report flags a run that changed precision midway.
"""

import os

from absl import logging

from bam_tf import atomic_files

SEGMENTS_FILE = "training_segments.json"

# Checkpoints written before this record: what trained their steps is not known.
UNKNOWN = "unknown"


def segments_so_far(checkpoint_dir: str | None, start_step: int, num_steps: int, context: dict[str, str],
                    description: str) -> list[dict]:
    """The stage's recorded segments up to `start_step` and this process's, which trains from step
    `start_step + 1` in `context` (none when no step is left); a warning where the context differs from
    the segment before."""
    earlier = _recorded(checkpoint_dir) if start_step and checkpoint_dir else []
    # A process killed between recording its segment and writing its first checkpoint trained none of the
    # steps this stage continues from.
    earlier = [segment for segment in earlier if segment["from_step"] <= start_step]
    if start_step and not earlier:
        earlier = [{"from_step": 1, **{key: UNKNOWN for key in context}}]
    if start_step >= num_steps:
        return earlier
    before = earlier[-1] if earlier else {}
    changed = {key: (before[key], value) for key, value in context.items()
               if before.get(key, UNKNOWN) not in (UNKNOWN, value)}
    if changed:
        logging.warning("%s: resuming after step %d with another %s than steps %d–%d were trained with (%s): "
                        "the stage mixes both; its training_summary.json lists which steps ran in which",
                        description, start_step, " and ".join(changed), before["from_step"], start_step,
                        "; ".join(f"{key} {old} → {new}" for key, (old, new) in changed.items()))
    return earlier + [{"from_step": start_step + 1, **context}]


def record(checkpoint_dir: str, segments: list[dict]) -> None:
    atomic_files.write_json(os.path.join(checkpoint_dir, SEGMENTS_FILE), segments)


def restore_hint(checkpoint_dir: str, context: dict[str, str]) -> str:
    """Why checkpoints may fail to restore here: they were trained in another precision, one side of which
    is mixed_float16 (its loss-scale variables have no place in the others' optimizer). "" otherwise."""
    recorded = _recorded(checkpoint_dir)
    before, now = (recorded[-1].get("precision", UNKNOWN) if recorded else UNKNOWN), context.get("precision")
    if now is None or before in (UNKNOWN, now) or "mixed_float16" not in (before, now):
        return ""
    return f"they were trained in {before} and this run computes in {now}: run with --precision={before} to continue them"


def trained_in(summary: dict, key: str) -> str | None:
    """What a training_summary.json says its stage trained in (`key`: "precision" or "device"): its segments
    described, or, in summaries from before segments were recorded, its `key`."""
    segments = summary.get("segments")
    if not segments or not isinstance(summary.get("steps"), int):
        return summary.get(key)
    return describe(segments, key, summary["steps"])


def describe(segments: list[dict], key: str, last_step: int) -> str:
    """`key` over the segments: its one value ("float32"), or where it changed, each value with its steps
    ("mixed_bfloat16 for steps 1–800, float32 for steps 801–4581"). Steps of an unknown context (checkpoints
    from before this record) are left out: they claim no difference."""
    spans = []  # [value, first step, last step], neighbouring segments of one value merged
    for segment, following in zip(segments, segments[1:] + [None]):
        value = segment.get(key, UNKNOWN)
        if value == UNKNOWN:
            continue
        end = following["from_step"] - 1 if following else last_step
        if spans and spans[-1][0] == value:
            spans[-1][2] = end
        else:
            spans.append([value, segment["from_step"], end])
    if len(spans) <= 1:
        return spans[0][0] if spans else UNKNOWN
    return ", ".join(f"{value} for steps {first}–{last}" for value, first, last in spans)


def _recorded(checkpoint_dir: str) -> list[dict]:
    """The segments file's list; [] where it is missing or unreadable (a warning: the steps it covered count
    as trained in an unknown context, which changes no number)."""
    path = os.path.join(checkpoint_dir, SEGMENTS_FILE)
    if not os.path.exists(path):
        return []
    try:
        segments = atomic_files.read_json(path)
    except (OSError, ValueError) as error:
        segments = error
    starts = [s.get("from_step") for s in segments] if isinstance(segments, list) and \
        all(isinstance(s, dict) for s in segments) else []
    if not (starts and starts[0] == 1 and all(type(n) is int for n in starts) and
            all(a < b for a, b in zip(starts, starts[1:]))):
        logging.warning("%s: unreadable as a list of training segments, from step 1 on (%s); the steps before "
                        "this resume count as trained in an unknown precision and device", path, str(segments)[:200])
        return []
    return segments
