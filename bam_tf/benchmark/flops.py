"""The analytic FLOP model of a BERT encoder, from which the benchmark reports achieved FLOP/s (pure)."""

from __future__ import annotations


def encoder_forward_flops(seq_len: int, hidden: int, intermediate: int, num_layers: int) -> int:
    """Forward FLOPs of a BERT encoder on ONE example of `seq_len` tokens (a multiply-add counts 2).

    Per layer:  Q, K, V and output projections  4 × 2·s·h·h   = 8·s·h²
                feed-forward up and down         2 × 2·s·h·i   = 4·s·h·i
                attention scores QKᵀ and the weighted sum of V (all heads together)
                                                 2 × 2·s²·h    = 4·s²·h
    Embedding lookups, LayerNorm, softmax, GELU, the pooler (2·h²) and the heads are left out
    (elementwise or per-example work, negligible next to the matmuls).
    """
    s, h, i = int(seq_len), int(hidden), int(intermediate)
    per_layer = 8 * s * h * h + 4 * s * h * i + 4 * s * s * h
    return int(num_layers) * per_layer


def batches_flops(shapes: list[tuple[int, int]], hidden: int, intermediate: int, num_layers: int,
                  training: bool) -> int:
    """FLOPs over batches given as (batch size, padded length); a training step ≈ 3 × forward
    (forward, plus backward ≈ 2 × forward for the gradients of activations and of weights)."""
    forward = sum(size * encoder_forward_flops(length, hidden, intermediate, num_layers) for size, length in shapes)
    return 3 * forward if training else forward
