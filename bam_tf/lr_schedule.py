"""Learning rate: linear warmup to the peak, then linear decay to zero at the last step (as BERT)."""

import keras
from keras import ops


def learning_rate_at(step, peak_learning_rate: float, warmup_steps: int, total_steps: int):
    """The learning rate for update `step` (0-based); works on Python numbers and tensors."""
    step = ops.cast(step, "float32")
    warmup = ops.cast(max(warmup_steps, 0), "float32")
    total = ops.cast(max(total_steps, 1), "float32")
    # Warmup uses (step + 1) so the very first update already moves the weights.
    warmup_fraction = ops.minimum((step + 1.0) / ops.maximum(warmup, 1.0), 1.0)
    decay_fraction = ops.clip((total - step) / ops.maximum(total - warmup, 1.0), 0.0, 1.0)
    return peak_learning_rate * ops.where(step < warmup, warmup_fraction, decay_fraction)


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
