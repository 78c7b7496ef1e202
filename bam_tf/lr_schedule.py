"""Learning rate as the original BAM/BERT optimizer: linear warmup, then linear decay to zero.

For update `step` (0-based) of `total_steps`, with W = int(warmup_fraction · total_steps) warmup steps:
  step < W:  peak · step / W
  step ≥ W:  peak · (1 − step / total_steps)
The decay is not offset by the warmup (tf.train.polynomial_decay over all steps), so the rate drops
from about peak to peak · (1 − W / total) when warmup ends, and the very first update has rate 0.
"""

import keras
from keras import ops


def warmup_steps_for(warmup_fraction: float, total_steps: int) -> int:
    """int(total · fraction), truncated as the original's int(num_train_steps * warmup_proportion)."""
    return int(total_steps * warmup_fraction)


def learning_rate_at(step, peak_learning_rate: float, warmup_steps: int, total_steps: int):
    """The learning rate for update `step` (0-based); works on Python numbers and tensors."""
    step = ops.cast(step, "float32")
    warmup = ops.cast(max(warmup_steps, 0), "float32")
    total = ops.cast(max(total_steps, 1), "float32")
    warmup_rate = step / ops.maximum(warmup, 1.0)
    decay_rate = ops.clip(1.0 - step / total, 0.0, 1.0)
    return peak_learning_rate * ops.where(step < warmup, warmup_rate, decay_rate)


@keras.saving.register_keras_serializable(package="bam_tf")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int):
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        return learning_rate_at(step, self.peak_learning_rate, self.warmup_steps, self.total_steps)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}
