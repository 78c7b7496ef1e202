"""AdamW as BERT/BAM used it: no decay on LayerNorm and biases, layer-wise learning-rate decay, and
global-norm clipping of the *summed* gradient.

Keras clips each replica's gradient before the cross-replica sum, which under a distribution strategy
clips a different quantity than a single-device run would; here clipping happens after the sum, so the
update does not depend on how the batch was split.
"""

import re

import keras
import tensorflow as tf

from bam_tf.lr_schedule import WarmupLinearDecay

NO_DECAY_NAMES = ("gamma", "beta", "bias")  # LayerNorm scale/offset and every bias
_EMBEDDING_PATTERN = re.compile(r"(token_embedding|position_embedding|segment_embedding|embeddings_layer_norm)/")
_LAYER_PATTERN = re.compile(r"transformer_layer_(\d+)/")


def layerwise_lr_multiplier(variable_path: str, num_layers: int, decay: float) -> float:
    """decay^(num_layers + 1 − depth): embeddings at depth 0, layer i at i + 1, pooler and heads at the top.

    Lower layers hold more general features, so they move less (ELECTRA/BAM's layerwise_lr_decay).
    """
    if _EMBEDDING_PATTERN.search(variable_path):
        depth = 0
    elif match := _LAYER_PATTERN.search(variable_path):
        depth = int(match.group(1)) + 1
    else:
        depth = num_layers + 1
    return float(decay ** (num_layers + 1 - depth))


class BertAdamW(keras.optimizers.AdamW):
    """AdamW with a per-variable learning-rate multiplier, decoupled decay scaled by it, post-sum clipping."""

    def __init__(self, *, num_layers: int, layerwise_lr_decay: float, clip_global_norm: float | None,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.layerwise_lr_decay = layerwise_lr_decay
        self.clip_global_norm = clip_global_norm
        self._lr_multipliers = {}
        self.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))

    def build(self, variables):
        super().build(variables)
        for variable in variables:
            self._lr_multipliers[self._var_key(variable)] = layerwise_lr_multiplier(
                variable.path, self.num_layers, self.layerwise_lr_decay)

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
        super().update_step(gradient, variable, learning_rate)


def create_optimizer(*, peak_learning_rate: float, total_steps: int, warmup_fraction: float = 0.1,
                     weight_decay: float = 0.01, layerwise_lr_decay: float = 0.9, num_layers: int,
                     clip_global_norm: float | None = 1.0) -> BertAdamW:
    schedule = WarmupLinearDecay(peak_learning_rate, int(round(warmup_fraction * total_steps)), total_steps)
    return BertAdamW(learning_rate=schedule, weight_decay=weight_decay, beta_1=0.9, beta_2=0.999,
                     epsilon=1e-6, num_layers=num_layers, layerwise_lr_decay=layerwise_lr_decay,
                     clip_global_norm=clip_global_norm)
