"""How long a multi-task student trains: an epoch as the original BAM code counts it.

The original (bam/data/task_weighting.py, `dataset_multiples=True` for every multi-task run) copies each
small training set `multiple` times into the multi-task train set and trains `num_train_epochs` passes
over that multiplied set. A task's multiple is round((target + 0.01) / size), where the target is the
task's size^exponent share rescaled so the reference task (MNLI, the largest) keeps its own size:

    target_t = size_ref · (size_t / size_ref)^exponent   ⇒   multiple_t = round((size_ref / size_t)^(1 − exponent) + 0.01 / size_t)

Its size table is fixed (the full GLUE train sets, MRPC and STS-B with both sentence orders), so a GLUE
task gets the same multiple however many of its examples a run uses: CoLA 3, SST-2 2, MRPC 3, STS-B 2,
RTE 4, MNLI / QNLI / QQP 1. A task of --task_defs has no entry there: its multiple comes from the same
formula relative to the largest training set of the run.

Only the epoch's length is taken from this. Which task fills each slot is still drawn ∝ size^exponent
(bam_tf.task_sampler), the expected weight each task gets in the original (its copies × its per-example
`weights_after_multiples`), without copying examples or weighting losses.
"""

# The original's table (train examples, MRPC and STS-B with their swapped pairs), keyed by bam_tf task name.
ORIGINAL_TRAIN_SIZES = {"CoLA": 8551, "MNLI": 392702, "MRPC": 7336, "QNLI": 108436, "QQP": 363869,
                        "SST-2": 67349, "STS-B": 11498, "RTE": 2490}
REFERENCE_TASK = "MNLI"


def multiple_of(size: float, reference_size: float, exponent: float) -> int:
    """Copies of a training set of `size` examples, as the original rounds them (Python's round)."""
    if size <= 0:
        return 1
    target = reference_size * (size / reference_size) ** exponent
    return max(1, int(round((target + 0.01) / size)))


def dataset_multiples(task_names: list[str], sizes: list[int], exponent: float) -> list[int]:
    """Each task's multiple: from the original's table for GLUE tasks, relative to the run's largest
    training set for the others (tasks of --task_defs, whose names never clash with GLUE's)."""
    largest = max(max(sizes), 1)
    multiples = []
    for name, size in zip(task_names, sizes):
        if name in ORIGINAL_TRAIN_SIZES:
            multiples.append(multiple_of(ORIGINAL_TRAIN_SIZES[name], ORIGINAL_TRAIN_SIZES[REFERENCE_TASK], exponent))
        else:
            multiples.append(multiple_of(size, largest, exponent))
    return multiples


def epoch_multiples(task_names: list[str], sizes: list[int], exponent: float, enabled: bool) -> list[int]:
    """The multiples a training stage counts its epoch with: the original's for a multi-task run with
    --dataset_multiples, ones otherwise (the original turns them off for single-task models)."""
    if enabled and len(sizes) > 1:
        return dataset_multiples(task_names, sizes, exponent)
    return [1] * len(sizes)


def epoch_sizes(task_names: list[str], sizes: list[int], exponent: float, enabled: bool) -> list[int]:
    """Each task's examples in one epoch: size × its epoch_multiples entry (Σ of them: the epoch)."""
    return [size * multiple for size, multiple in zip(sizes, epoch_multiples(task_names, sizes, exponent, enabled))]
