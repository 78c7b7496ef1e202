"""Which steps of a resumed stage ran in which precision and on which device."""

import json
import logging

import pytest

from bam_tf.training_segments import SEGMENTS_FILE, describe, record, restore_hint, segments_so_far, trained_in

XEON = {"precision": "mixed_bfloat16", "device": "CPU Xeon"}
EPYC = {"precision": "float32", "device": "CPU EPYC"}


def test_a_fresh_stage_is_one_segment_in_its_context():
    segments = segments_so_far(None, 0, 10, EPYC, "student")
    assert segments == [{"from_step": 1, **EPYC}]
    assert describe(segments, "precision", 10) == "float32"


def test_a_resume_elsewhere_warns_and_the_summary_names_the_steps_of_each(tmp_path, caplog):
    record(str(tmp_path), segments_so_far(str(tmp_path), 0, 4581, XEON, "student"))
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 800, 4581, EPYC, "student")
    assert segments == [{"from_step": 1, **XEON}, {"from_step": 801, **EPYC}]
    assert ("student: resuming after step 800 with another precision and device than steps 1–800 were trained with "
            "(precision mixed_bfloat16 → float32; device CPU Xeon → CPU EPYC)") in caplog.text
    assert describe(segments, "precision", 4581) == "mixed_bfloat16 for steps 1–800, float32 for steps 801–4581"
    record(str(tmp_path), segments)
    assert json.loads((tmp_path / SEGMENTS_FILE).read_text()) == segments


def test_resumes_in_the_same_context_read_as_one(tmp_path, caplog):
    record(str(tmp_path), [{"from_step": 1, **EPYC}, {"from_step": 201, **EPYC}])
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 400, 600, {**EPYC, "device": "CPU EPYC 2"}, "teacher_RTE")
    assert "another device than steps 201–400" in caplog.text and "precision" not in caplog.text
    assert describe(segments, "precision", 600) == "float32"
    assert describe(segments, "device", 600) == "CPU EPYC for steps 1–400, CPU EPYC 2 for steps 401–600"


def test_segments_of_steps_the_model_lost_are_dropped(tmp_path):
    """A process that started at 801 and was killed between recording its segment and writing its first
    checkpoint: the stage resumes from 800 again, and that process trained none of its steps."""
    record(str(tmp_path), [{"from_step": 1, **XEON}, {"from_step": 801, **EPYC}])
    assert segments_so_far(str(tmp_path), 800, 4581, XEON, "student") == [{"from_step": 1, **XEON},
                                                                         {"from_step": 801, **XEON}]
    assert segments_so_far(str(tmp_path), 600, 4581, XEON, "student") == [{"from_step": 1, **XEON},
                                                                         {"from_step": 601, **XEON}]


@pytest.mark.parametrize("content", [None, "", "{}", "[]", "[1]", '[{"from_step": "1"}]', '[{"from_step": true}]',
                                     '[{"from_step": 5}]', '[{"from_step": 1}, {"from_step": 1}]'])
def test_without_a_readable_record_the_steps_before_are_unknown(tmp_path, caplog, content):
    if content is not None:  # None: checkpoints from before this record
        (tmp_path / SEGMENTS_FILE).write_text(content)
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 800, 4581, EPYC, "student")
    assert segments == [{"from_step": 1, "precision": "unknown", "device": "unknown"}, {"from_step": 801, **EPYC}]
    assert ("unreadable as a list of training segments" in caplog.text) == (content is not None)
    assert "resuming" not in caplog.text  # nothing known to differ from
    assert describe(segments, "precision", 4581) == "float32"  # unrecorded steps claim no difference


def test_a_stage_resumed_with_no_step_left_adds_no_segment(tmp_path, caplog):
    record(str(tmp_path), [{"from_step": 1, **XEON}])
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 4581, 4581, EPYC, "student")
    assert segments == [{"from_step": 1, **XEON}] and not caplog.text
    assert describe(segments, "precision", 4581) == "mixed_bfloat16"


def test_a_results_line_describes_the_segments_and_older_summaries_their_own_precision():
    summary = {"steps": 4581, "precision": "float32", "device": "CPU EPYC",
               "segments": [{"from_step": 1, **XEON}, {"from_step": 801, **EPYC}, {"from_step": 2001, **EPYC}]}
    assert trained_in(summary, "precision") == "mixed_bfloat16 for steps 1–800, float32 for steps 801–4581"
    assert trained_in(summary, "device") == "CPU Xeon for steps 1–800, CPU EPYC for steps 801–4581"
    older = {"steps": 4581, "precision": "float32", "device": "CPU EPYC"}  # from before segments were recorded
    assert (trained_in(older, "precision"), trained_in(older, "device")) == ("float32", "CPU EPYC")
    unrecorded_start = {**older, "segments": [{"from_step": 1, "precision": "unknown"}, {"from_step": 9, **EPYC}]}
    assert trained_in(unrecorded_start, "precision") == "float32"
    assert describe([{"from_step": 1, "precision": "unknown"}], "precision", 10) == "unknown"


def test_a_restore_that_fails_across_float16_names_the_precision_that_continues_it(tmp_path):
    record(str(tmp_path), [{"from_step": 1, "precision": "mixed_float16", "device": "GPU"}])
    assert restore_hint(str(tmp_path), EPYC) == ("they were trained in mixed_float16 and this run computes in "
                                                  "float32: run with --precision=mixed_float16 to continue them")
    assert restore_hint(str(tmp_path), {"precision": "mixed_float16"}) == ""  # the same precision: not the cause
    record(str(tmp_path), [{"from_step": 1, **XEON}])
    assert restore_hint(str(tmp_path), EPYC) == ""  # bfloat16 and float32 checkpoints hold the same variables
    assert restore_hint(str(tmp_path / "nothing"), EPYC) == ""
