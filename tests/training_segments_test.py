"""Which steps of a resumed stage ran in which precision and on which device."""

import json
import logging

import pytest

from bam_tf.training_segments import SEGMENTS_FILE, describe, record, segments_so_far

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
    assert ("student: resuming at step 801 with another precision and device than steps 1–800 were trained with "
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
    """A process that started at 801 and checkpointed at 1000 before its checkpoint went bad: the stage
    resumes from 800 again, so the lost process trained none of the model's steps."""
    record(str(tmp_path), [{"from_step": 1, **XEON}, {"from_step": 801, **EPYC}])
    assert segments_so_far(str(tmp_path), 800, 4581, XEON, "student") == [{"from_step": 1, **XEON},
                                                                         {"from_step": 801, **XEON}]
    assert segments_so_far(str(tmp_path), 600, 4581, XEON, "student") == [{"from_step": 1, **XEON},
                                                                         {"from_step": 601, **XEON}]


@pytest.mark.parametrize("content", [None, "", "{}", "[]", '[{"from_step": "1"}]'])
def test_without_a_readable_record_the_steps_before_are_unknown(tmp_path, caplog, content):
    if content is not None:  # None: checkpoints from before this record
        (tmp_path / SEGMENTS_FILE).write_text(content)
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 800, 4581, EPYC, "student")
    assert segments == [{"from_step": 1, "precision": "unknown", "device": "unknown"}, {"from_step": 801, **EPYC}]
    assert ("unreadable as a list of training segments" in caplog.text) == (content is not None)
    assert "resuming" not in caplog.text  # nothing known to differ from
    assert describe(segments, "precision", 4581) == "unknown for steps 1–800, float32 for steps 801–4581"


def test_a_stage_resumed_with_no_step_left_adds_no_segment(tmp_path, caplog):
    record(str(tmp_path), [{"from_step": 1, **XEON}])
    with caplog.at_level(logging.WARNING):
        segments = segments_so_far(str(tmp_path), 4581, 4581, EPYC, "student")
    assert segments == [{"from_step": 1, **XEON}] and not caplog.text
    assert describe(segments, "precision", 4581) == "mixed_bfloat16"
