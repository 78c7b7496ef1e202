"""AdamW as BERT/BAM used it: no decay on LayerNorm and biases, layer-wise learning-rate decay, Adam
without bias correction (the original's AdamWeightDecayOptimizer; `bias_correction=True` gives Keras'
Adam), and global-norm clipping of the *summed* gradient.

Without bias correction the first updates are larger than lr: m/√v starts near (1−β1)/√(1−β2) ≈ 3.2 and
only approaches 1 after a few thousand steps; BERT's warmup is what keeps that early phase stable.

Keras clips each replica's gradient before the cross-replica sum, which under a distribution strategy
clips a different quantity than a single-device run would; here clipping happens after the sum, so the
update does not depend on how the batch was split.
"""

import re

import keras
import tensorflow as tf

from bam_tf.lr_schedule import WarmupLinearDecay, warmup_steps_for

NO_DECAY_NAMES = ("gamma", "beta", "bias")  # LayerNorm scale/offset and every bias
_EMBEDDING_PATTERN = re.compile(r"(^|/)(token_embedding|position_embedding|segment_embedding|embeddings_layer_norm)/")
_LAYER_PATTERN = re.compile(r"(^|/)transformer_layer_(\d+)/")
_POOLER_PATTERN = re.compile(r"(^|/)pooled_dense/")


def layer_depth(variable_path: str, num_layers: int) -> int:
    """The original's depths (bert/optimization.py): embeddings 0, layer i at i + 1, the pooler at
    num_layers + 1, everything else (the task heads, `task_specific/` there) at num_layers + 2.

    tests/optimizer_test.py checks that every keras-hub BERT variable lands below the heads.
    """
    if _EMBEDDING_PATTERN.search(variable_path):
        return 0
    if match := _LAYER_PATTERN.search(variable_path):
        return int(match.group(2)) + 1
    if _POOLER_PATTERN.search(variable_path):
        return num_layers + 1
    return num_layers + 2


def layerwise_lr_multiplier(variable_path: str, num_layers: int, decay: float) -> float:
    """decay^(num_layers + 2 − depth): heads 1, pooler decay, top layer decay², embeddings decay^(n+2).

    Lower layers hold more general features, so they move less (BAM's layerwise lr decay).
    """
    return float(decay ** (num_layers + 2 - layer_depth(variable_path, num_layers)))


@keras.saving.register_keras_serializable(package="bam_tf")
class BertAdamW(keras.optimizers.AdamW):
    """AdamW with a per-variable learning-rate multiplier, decoupled decay scaled by it, post-sum clipping.

    `schedule_step`: a variable the learning-rate schedule reads instead of `iterations` (the model's
    batch counter, which also advances on batches a loss-scale optimizer skipped).
    """

    def __init__(self, *, num_layers: int, layerwise_lr_decay: float, clip_global_norm: float | None,
                 bias_correction: bool = False, schedule_step=None, **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.layerwise_lr_decay = layerwise_lr_decay
        self.clip_global_norm = clip_global_norm
        self.bias_correction = bias_correction
        self.schedule_step = schedule_step
        self._lr_multipliers = {}
        self.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))

    def get_config(self) -> dict:
        # schedule_step (the model's batch counter, a variable) is not saved: a reloaded optimizer's
        # schedule follows its own `iterations`, which equal it unless float16 loss scaling skipped updates.
        return {**super().get_config(), "num_layers": self.num_layers, "layerwise_lr_decay": self.layerwise_lr_decay,
                "clip_global_norm": self.clip_global_norm, "bias_correction": self.bias_correction}

    def build(self, variables):
        super().build(variables)
        for variable in variables:
            self._lr_multipliers[self._var_key(variable)] = layerwise_lr_multiplier(
                variable.path, self.num_layers, self.layerwise_lr_decay)

    def _get_current_learning_rate(self):
        if self.schedule_step is not None and isinstance(
                self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.schedule_step)
        return super()._get_current_learning_rate()

    def _apply_weight_decay(self, variables):
        pass  # applied in update_step, where the per-variable learning rate is known

    def _clip_gradients(self, grads):
        return grads  # clipped in _backend_update_step, after the cross-replica sum

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        trainable_variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        grads_and_vars = self._all_reduce_sum_gradients(list(zip(grads, trainable_variables)))
        if self.clip_global_norm:
            grads, variables = zip(*grads_and_vars)
            grads, _ = tf.clip_by_global_norm(list(grads), self.clip_global_norm)
            grads_and_vars = list(zip(grads, variables))
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_tf_update_step, self._distribution_strategy, grads_and_vars, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = tf.cast(learning_rate, variable.dtype) * self._lr_multipliers[self._var_key(variable)]
        if self._use_weight_decay(variable):
            variable.assign_sub(variable * tf.cast(self.weight_decay, variable.dtype) * learning_rate)
        if self.bias_correction:
            super().update_step(gradient, variable, learning_rate)
            return
        # m ← β1·m + (1 − β1)·g, v ← β2·v + (1 − β2)·g², w ← w − lr·m / (√v + ε): no 1/(1 − βᵗ) factors.
        gradient = tf.convert_to_tensor(gradient, variable.dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, (gradient - m) * (1.0 - self.beta_1))
        self.assign_add(v, (tf.square(gradient) - v) * (1.0 - self.beta_2))
        self.assign_sub(variable, m * learning_rate / (tf.sqrt(v) + self.epsilon))


def create_optimizer(*, peak_learning_rate: float, total_steps: int, warmup_fraction: float = 0.1,
                     weight_decay: float = 0.01, layerwise_lr_decay: float = 0.9, num_layers: int,
                     clip_global_norm: float | None = 1.0, adam_bias_correction: bool = False,
                     schedule_step=None) -> BertAdamW:
    schedule = WarmupLinearDecay(peak_learning_rate, warmup_steps_for(warmup_fraction, total_steps), total_steps)
    return BertAdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9, beta_2=0.999,
                     epsilon=1e-6, num_layers=num_layers, layerwise_lr_decay=layerwise_lr_decay,
                     clip_global_norm=clip_global_norm, bias_correction=adam_bias_correction,
                     schedule_step=schedule_step)
