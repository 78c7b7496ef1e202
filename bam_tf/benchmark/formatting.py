"""A benchmark run's results as the console table and as the Markdown of results/benchmark.md."""

from __future__ import annotations

from bam_tf.benchmark.results import Report


def _verdict(ex_ratio: float, tok_ratio: float, target: str) -> str:
    if not target:
        return ""
    ratio = tok_ratio if "tok/s" in target else ex_ratio
    return "met" if ratio >= float(target.split()[1]) else "NOT met"


def _variant_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    header = ["variant", "steps", "examples", "ex/s", "real tok/s", "padded tok/s", "mean padded len", "wall s",
              "GFLOP/s"]
    rows = [[f"{v.key} {v.name}", str(v.steps), str(v.examples), f"{v.examples_per_s:.1f}",
             f"{v.real_tokens_per_s:.0f}", f"{v.padded_tokens_per_s:.0f}", f"{v.mean_padded_length:.1f}",
             f"{v.seconds:.2f}", f"{v.flops_per_s / 1e9:.1f}"] for v in report.variants]
    return header, rows


def _efficiency_lines(report: Report) -> list[str]:
    bf16, fp32 = report.peak("bfloat16"), report.peak("float32")
    student = report.variant("(1)")
    return [
        bf16.describe("bf16"),
        fp32.describe("float32"),
        f"achieved training FLOP/s of (1): {student.flops_per_s / 1e9:.1f} GFLOP/s = "
        f"{100 * student.flops_per_s / bf16.flops_per_s:.1f}% of the measured bf16 peak "
        f"({100 * student.flops_per_s / fp32.flops_per_s:.1f}% of the float32 peak)",
    ]


def format_console(report: Report) -> str:
    header, rows = _variant_rows(report)
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths)))
    out = [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows] + [""]
    for name, ex_ratio, tok_ratio, target in report.ratios():
        verdict = f"  target {target}: {_verdict(ex_ratio, tok_ratio, target)}" if target else ""
        out.append(f"{name} = {ex_ratio:.3f} (ex/s; real tok/s: {tok_ratio:.3f}){verdict}")
    out.append("")
    out.extend(_efficiency_lines(report))
    return "\n".join(out)


def format_markdown(report: Report) -> str:
    out = ["# bam_tf training throughput benchmark", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in report.meta] + [""]
    header, rows = _variant_rows(report)
    out += ["## Variants", "", "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1))
            + "|"] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
    out += ["## Ratios", "", "| ratio | ex/s | real tok/s | target | verdict |", "|---|---:|---:|---|---|"]
    out += [f"| {name} | {ex:.3f} | {tok:.3f} | {target or '—'} | {_verdict(ex, tok, target) or '—'} |"
            for name, ex, tok, target in report.ratios()] + [""]
    out += ["## Machine peak and achieved FLOP/s", ""] + [f"- {line}" for line in _efficiency_lines(report)] + [""]
    out += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    return "\n".join(out)
