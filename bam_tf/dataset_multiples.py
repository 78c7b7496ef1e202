"""How long a multi-task student trains: an epoch as the original BAM code counts it.

The original (bam/data/task_weighting.py, `dataset_multiples=True` for every multi-task run) copies each
small training set `multiple` times into the multi-task train set and trains `num_train_epochs` passes
over that multiplied set. A task's multiple is round((target + 0.01) / size), where the target is the
task's size^exponent share rescaled so the reference task (MNLI, the largest) keeps its own size:

    target_t = size_ref · (size_t / size_ref)^exponent   ⇒   multiple_t = round((size_ref / size_t)^(1 − exponent) + 0.01 / size_t)

Its size table is fixed (the full GLUE train sets, MRPC and STS-B with both sentence orders), so a GLUE
task gets the same multiple however many of its examples a run uses: CoLA 3, SST-2 2, MRPC 3, STS-B 2,
RTE 4, MNLI / QNLI / QQP 1. WNLI, which the original never trains with multiples (its table lacks it),
counts its full train set (635) against MNLI like the others: 5. A task of --task_defs has no entry: its
multiple comes from the same formula relative to the run's reference, one for all tasks of the run: MNLI's
table size when a GLUE task is in the run (so a task the size of RTE gets RTE's multiple), otherwise the
largest training set of the run, whichever is larger.

Only the epoch's length is taken from this. Which task fills each slot is still drawn ∝ size^exponent
(bam_tf.task_sampler), the expected weight each task gets in the original (its copies × its per-example
`weights_after_multiples`), without copying examples or weighting losses.
"""

# The original's table (train examples, MRPC and STS-B with their swapped pairs), keyed by bam_tf task name.
ORIGINAL_TRAIN_SIZES = {"CoLA": 8551, "MNLI": 392702, "MRPC": 7336, "QNLI": 108436, "QQP": 363869,
                        "SST-2": 67349, "STS-B": 11498, "RTE": 2490}
REFERENCE_TASK = "MNLI"
# Full GLUE train sets the original's table lacks (it never trains WNLI with multiples: its lookup would fail).
GLUE_TRAIN_SIZES = {**ORIGINAL_TRAIN_SIZES, "WNLI": 635}


def multiple_of(size: float, reference_size: float, exponent: float) -> int:
    """Copies of a training set of `size` examples, as the original rounds them (Python's round)."""
    if size <= 0:
        return 1
    target = reference_size * (size / reference_size) ** exponent
    return max(1, int(round((target + 0.01) / size)))


def reference_size(task_names: list[str], sizes: list[int]) -> int:
    """What a task without a table entry is scaled against: the run's largest training set, or MNLI's table
    size if the run has a GLUE task and that is larger (GLUE tasks are always scaled against MNLI)."""
    largest = max(max(sizes), 1)
    if any(name in GLUE_TRAIN_SIZES for name in task_names):
        return max(largest, GLUE_TRAIN_SIZES[REFERENCE_TASK])
    return largest


def dataset_multiples(task_names: list[str], sizes: list[int], exponent: float) -> list[int]:
    """Each task's multiple: from its full GLUE train size against MNLI's for GLUE tasks (the original's
    table), from its size in this run against reference_size for the others (tasks of --task_defs, whose
    names never clash with GLUE's)."""
    reference = reference_size(task_names, sizes)
    multiples = []
    for name, size in zip(task_names, sizes):
        if name in GLUE_TRAIN_SIZES:
            multiples.append(multiple_of(GLUE_TRAIN_SIZES[name], GLUE_TRAIN_SIZES[REFERENCE_TASK], exponent))
        else:
            multiples.append(multiple_of(size, reference, exponent))
    return multiples


def describe_reference(task_names: list[str], sizes: list[int]) -> str:
    """For the log: where a run's multiples come from."""
    if all(name in GLUE_TRAIN_SIZES for name in task_names):
        return "the original's size table, MNLI the reference"
    reference = reference_size(task_names, sizes)
    if any(name in GLUE_TRAIN_SIZES for name in task_names):
        return (f"GLUE tasks from the original's size table, others from their size here against "
                f"{reference} examples (MNLI's, or the largest set here if larger)")
    return f"relative to {task_names[sizes.index(max(sizes))]}, the largest here"


def epoch_multiples(task_names: list[str], sizes: list[int], exponent: float, enabled: bool) -> list[int]:
    """The multiples a training stage counts its epoch with: the original's for a multi-task run with
    --dataset_multiples, ones otherwise (the original turns them off for single-task models)."""
    if enabled and len(sizes) > 1:
        return dataset_multiples(task_names, sizes, exponent)
    return [1] * len(sizes)


def epoch_sizes(task_names: list[str], sizes: list[int], exponent: float, enabled: bool) -> list[int]:
    """Each task's examples in one epoch: size × its epoch_multiples entry (Σ of them: the epoch)."""
    return [size * multiple for size, multiple in zip(sizes, epoch_multiples(task_names, sizes, exponent, enabled))]
