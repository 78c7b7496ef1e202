"""Train a tiny BAM student a few steps under a strategy and save its weights (run by distribution_test).

    python tests/scripts/distributed_training.py --strategy=default|mirrored|multi_worker_mirrored --out=w.npz \
        [--group_size=N]
"""

import argparse

import keras
import keras_hub
import numpy as np

from bam_tf.distribution import create_strategy, is_chief
from bam_tf.task_set import glue_task
from bam_tf.input_pipeline import TaskExamples
from bam_tf.model import DistillationSettings, MultiTaskBert
from bam_tf.optimizer import BertAdamW
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples
from bam_tf.trained_model import build_model
from bam_tf.trainer import TrainingOptions, train

BATCH, STEPS = 8, 4


def _encoded(num_examples, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, size=num_examples).astype(np.int32)
    flat = np.concatenate([np.concatenate([[1], rng.integers(5, 100, n - 2), [2]]) for n in lengths]).astype(np.int32)
    return EncodedExamples(flat, np.zeros_like(flat), lengths)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", required=True)
    parser.add_argument("--cpu_replicas", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--clip", type=float, default=0.0, help="global-norm clip (0: off)")
    parser.add_argument("--group_size", type=int, default=0, help="length groups per replica (0: off)")
    args = parser.parse_args()
    strategy = create_strategy(args.strategy, cpu_replicas=args.cpu_replicas)
    rng = np.random.default_rng(0)
    rte, sts = (TaskExamples(_encoded(24, 1), rng.integers(0, 2, 24).astype(np.float32), 2,
                             rng.normal(size=(24, 2)).astype(np.float32)),
                TaskExamples(_encoded(40, 2), rng.uniform(0, 5, 40).astype(np.float32), 1,
                             rng.uniform(0, 5, (40, 1)).astype(np.float32)))
    stream = example_stream([24, 40], 0.75, BATCH, STEPS, "mixed", seed=3)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        # No dropout: replicas draw their own dropout masks, which a single device would not reproduce.
        backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=16,
                                                 intermediate_dim=32, max_sequence_length=32, dropout=0.0)
        model = MultiTaskBert(backbone, [glue_task("RTE"), glue_task("STS-B")],
                              DistillationSettings(total_steps=STEPS), head_dropout=0.0)
        build_model(model)
        initial = [v.numpy() for v in model.trainable_weights]
        # ε = 1 makes Adam's step depend on the gradient's scale, so a loss normalised by the wrong batch
        # size, or clipping before the cross-replica sum, would change the weights.
        model.compile(optimizer=BertAdamW(learning_rate=1e-2, weight_decay=0.01, epsilon=1.0, num_layers=2,
                                          layerwise_lr_decay=0.9, clip_global_norm=args.clip or None))
    summary = train(model, [rte, sts], stream, strategy, TrainingOptions(verbose=False, group_size=args.group_size))
    if is_chief():
        np.savez(args.out, replicas=strategy.num_replicas_in_sync, loss=summary.last_losses["RTE"],
                 length_group_size=summary.length_group_size,
                 **{f"w{i}": v.numpy() for i, v in enumerate(model.trainable_weights)},
                 **{f"initial{i}": value for i, value in enumerate(initial)})


if __name__ == "__main__":
    main()
