"""bam_tf.dataset_multiples against numbers computed by hand from the original's formula and table."""

import pytest

from bam_tf.dataset_multiples import ORIGINAL_TRAIN_SIZES, dataset_multiples, epoch_multiples, multiple_of
from bam_tf.task_sampler import num_train_steps

GLUE_TRAIN_TASKS = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE"]


def test_the_eight_glue_training_sets_get_the_originals_multiples():
    # round((392702 / size)^0.25 + 0.01 / size): CoLA 45.92^¼ = 2.60 → 3, SST-2 5.831^¼ = 1.55 → 2,
    # MRPC 53.53^¼ = 2.70 → 3, STS-B 34.15^¼ = 2.42 → 2, QQP 1.079^¼ = 1.02 → 1, MNLI 1, QNLI 3.621^¼ = 1.38 → 1,
    # RTE 157.7^¼ = 3.54 → 4
    sizes = [ORIGINAL_TRAIN_SIZES[name] for name in GLUE_TRAIN_TASKS]
    assert dataset_multiples(GLUE_TRAIN_TASKS, sizes, 0.75) == [3, 2, 3, 2, 1, 1, 1, 4]


def test_glue_tasks_keep_the_tables_multiple_whatever_their_size_in_this_run():
    # the five-task CPU config: CoLA 8551, SST-2 capped at 8551, MRPC 3668×2, STS-B 5749×2, RTE 2490
    names, sizes = ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"], [8551, 8551, 7336, 11498, 2490]
    multiples = dataset_multiples(names, sizes, 0.75)
    assert multiples == [3, 2, 3, 2, 4]
    # an epoch: 25653 + 17102 + 22008 + 22996 + 9960 = 97719 examples; 6 epochs of batch 128:
    # ⌈6 · 97719 / 128⌉ = ⌈4580.6⌉ = 4581 steps (without multiples: ⌈6 · 38426 / 128⌉ = 1802)
    epoch = [s * m for s, m in zip(sizes, multiples)]
    assert sum(epoch) == 97719
    assert num_train_steps(epoch, 6, 128) == 4581
    assert num_train_steps(sizes, 6, 128) == 1802


def test_expected_task_weights_equal_the_originals_copies_times_weights():
    """The original's expected weight of a task is copies × size × weights_after_multiples; bam_tf samples
    ∝ size^0.75 instead. For CoLA, MRPC and RTE (table sizes) both shares, by hand:
      size^0.75: 8551^.75 = 889.2, 7336^.75 = 792.7, 2490^.75 = 352.5 (Σ 2034.4) → 0.4371, 0.3896, 0.1733
      the original: weight_t ∝ (size_t^.75 / Σ) / (size_t · multiple_t), times copies · size → ∝ size_t^.75 again."""
    names = ["CoLA", "MRPC", "RTE"]
    sizes = [ORIGINAL_TRAIN_SIZES[n] for n in names]
    multiples = dataset_multiples(names, sizes, 0.75)
    powered = [s ** 0.75 for s in sizes]
    weights_after_multiples = [p / (s * m) for p, s, m in zip(powered, sizes, multiples)]  # before normalising
    original = [m * s * w for m, s, w in zip(multiples, sizes, weights_after_multiples)]
    original_share = [x / sum(original) for x in original]
    assert original_share == pytest.approx([0.4371, 0.3896, 0.1733], abs=1e-4)
    from bam_tf.task_sampler import task_probabilities
    assert task_probabilities(sizes, 0.75).tolist() == pytest.approx(original_share, rel=1e-9)


def test_user_tasks_alone_are_scaled_relative_to_the_largest_task_of_the_run():
    # (10000 / 10000)^¼ = 1; (10000 / 600)^¼ = 16.67^¼ = 2.02 → 2; (10000 / 40)^¼ = 250^¼ = 3.98 → 4
    assert dataset_multiples(["big", "mid", "tiny"], [10000, 600, 40], 0.75) == [1, 2, 4]
    # exponent 1: sampling ∝ size, no copies needed
    assert dataset_multiples(["big", "tiny"], [10000, 40], 1.0) == [1, 1]


def test_user_tasks_beside_glue_tasks_share_mnlis_reference():
    # a GLUE task keeps its table multiple; the user task: (392702 / 100000)^¼ = 1.41 → 1
    assert dataset_multiples(["RTE", "mine"], [500, 100000], 0.75) == [4, 1]
    # a user task of RTE's size gets RTE's multiple: (392702 / 2490)^¼ = 3.54 → 4 (not 1 against RTE itself)
    assert dataset_multiples(["RTE", "mine"], [2490, 2490], 0.75) == [4, 4]
    # (392702 / 500)^¼ = 785.4^¼ = 5.29 → 5 beside CoLA, however few CoLA rows this run keeps
    assert dataset_multiples(["CoLA", "mine"], [1000, 500], 0.75) == [3, 5]
    # a user task larger than MNLI becomes the reference of the other user tasks: (10^6 / 10^4)^¼ = 3.16 → 3
    assert dataset_multiples(["RTE", "huge", "small"], [2490, 10**6, 10**4], 0.75) == [4, 1, 3]


def test_wnli_is_scaled_against_mnli_like_the_tables_tasks():
    # not in the original's table; its 635 train examples: (392702 / 635)^¼ = 618.4^¼ = 4.99 → 5, whatever else runs
    assert dataset_multiples(["RTE", "WNLI"], [2490, 635], 0.75) == [4, 5]
    assert dataset_multiples(["CoLA", "SST-2", "WNLI"], [8551, 1000, 100], 0.75) == [3, 2, 5]


def test_multiple_rounds_as_the_original():
    assert multiple_of(100, 100, 0.75) == 1
    assert multiple_of(16, 256, 0.75) == 2  # (256 / 16)^¼ = 2 exactly, + 0.01 / 16
    assert multiple_of(1000, 10, 0.75) == 1  # larger than the reference: never fewer than one copy


def test_single_task_stages_and_the_flag_turn_multiples_off():
    assert epoch_multiples(["RTE"], [2490], 0.75, enabled=True) == [1]  # the original: off for one task
    assert epoch_multiples(["CoLA", "RTE"], [8551, 2490], 0.75, enabled=False) == [1, 1]
    assert epoch_multiples(["CoLA", "RTE"], [8551, 2490], 0.75, enabled=True) == [3, 4]


def _inputs(names, sizes, multiples, steps, epochs=6, batch_size=128):
    import types

    import numpy as np

    from bam_tf.pipeline import TrainingInputs
    from bam_tf.task_sampler import ExampleStream
    stream = ExampleStream(np.zeros(steps * batch_size, np.int32), np.zeros(steps * batch_size, np.int64), batch_size)
    return TrainingInputs([types.SimpleNamespace(name=n) for n in names], [], stream, sizes, multiples, epochs,
                          sum(s * m for s, m in zip(sizes, multiples)))


def test_the_logs_budget_line_states_steps_epochs_and_multiples():
    names, sizes = ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"], [8551, 8551, 7336, 11498, 2490]
    assert _inputs(names, sizes, [3, 2, 3, 2, 4], 4581).budget() == (
        "4581 steps of 128 = 6 epochs of 97719 examples (CoLA 8551×3 + SST-2 8551×2 + MRPC 7336×3 + STS-B 11498×2 "
        "+ RTE 2490×4); multiples as the original's (the original's size table, MNLI the reference)")
    # --max_train_steps=10: the line says the cap, not 6 epochs that never happen
    assert _inputs(names, sizes, [3, 2, 3, 2, 4], 10).budget().startswith(
        "10 steps of 128, capped by --max_train_steps (4581 would be 6 epochs of 97719 examples (CoLA")
    # a teacher: one task, plain epochs (⌈3 · 2490 / 32⌉ = 234), nothing said about multiples
    assert _inputs(["RTE"], [2490], [1], 234, epochs=3, batch_size=32).budget() == (
        "234 steps of 32 = 3 epochs of 2490 examples (RTE 2490×1)")
    assert _inputs(["RTE"], [2490], [1], 78, epochs=1, batch_size=32).budget() == (
        "78 steps of 32 = 1 epoch of 2490 examples (RTE 2490×1)")
    assert _inputs(["big", "tiny"], [10000, 40], [1, 4], 4, epochs=1, batch_size=2560).budget().endswith(
        "multiples as the original's (relative to big, the largest here)")
    assert _inputs(["RTE", "mine"], [2490, 2490], [4, 4], 59, epochs=1, batch_size=340).budget().endswith(
        "(GLUE tasks from the original's size table, others from their size here against 392702 examples "
        "(MNLI's, or the largest set here if larger))")
