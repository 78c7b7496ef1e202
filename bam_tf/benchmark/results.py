"""What a benchmark run measured: each variant's result, the matmul peaks, and the ratios between
variants with their targets."""

from __future__ import annotations

import dataclasses

# The targets of the ratios (bam_tf.benchmark's docstring says what each one checks).
TARGET_VS_KERAS = 0.95  # (1)/(2)
TARGET_VS_STATIC = 2.5  # (1)/(3)
TARGET_GROUPS = 1.7  # (5b)/(5a), examples/s
TARGET_STUDENT_VS_TEACHERS = 0.85  # (5b)/(6), real tokens/s


@dataclasses.dataclass
class VariantResult:
    key: str  # "(1)" …
    name: str
    steps: int  # timed steps (batches)
    examples: int
    real_tokens: int  # sum of unpadded lengths
    padded_tokens: int  # sum of batch size × padded length
    seconds: float
    flops: int
    note: str = ""

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds

    @property
    def real_tokens_per_s(self) -> float:
        return self.real_tokens / self.seconds

    @property
    def padded_tokens_per_s(self) -> float:
        return self.padded_tokens / self.seconds

    @property
    def mean_padded_length(self) -> float:
        return self.padded_tokens / self.examples

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds


@dataclasses.dataclass
class Peak:
    dtype: str
    size: int
    matmuls: int
    repeats: int
    flops_per_s: float

    def describe(self, label: str) -> str:
        return (f"{label} matmul peak: {self.flops_per_s / 1e9:.1f} GFLOP/s (chains of {self.matmuls} "
                f"{self.size}×{self.size} matmuls, best of {self.repeats})")


@dataclasses.dataclass
class Report:
    meta: list[tuple[str, str]]
    variants: list[VariantResult]
    peaks: list[Peak]
    notes: list[str]

    def variant(self, key: str) -> VariantResult:
        return next(v for v in self.variants if v.key == key)

    def peak(self, dtype: str) -> Peak:
        return next(p for p in self.peaks if p.dtype == dtype)

    def ratios(self) -> list[tuple[str, float, float, str]]:
        """(name, ratio of ex/s, ratio of real tok/s, target text naming its unit), for the variants present."""
        keys = {v.key for v in self.variants}
        rows = []
        for a, b, target in RATIOS:
            if a in keys and b in keys:
                va, vb = self.variant(a), self.variant(b)
                rows.append((f"{a}/{b}", va.examples_per_s / vb.examples_per_s,
                             va.real_tokens_per_s / vb.real_tokens_per_s, target))
        return rows


# (numerator, denominator, target: "≥ x (ex/s)", "≥ x (real tok/s)" or "")
RATIOS = (("(1)", "(2)", f"≥ {TARGET_VS_KERAS} (ex/s)"), ("(1)", "(3)", f"≥ {TARGET_VS_STATIC} (ex/s)"),
          ("(4)", "(1)", ""), ("(5b)", "(5a)", f"≥ {TARGET_GROUPS} (ex/s)"), ("(5c)", "(5b)", ""),
          ("(6c)", "(6)", ""),
          ("(5b)", "(6)", f"≥ {TARGET_STUDENT_VS_TEACHERS} (real tok/s)"))
