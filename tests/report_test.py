"""bam_tf.experiments.report on hand-made results files: the summary's counts, directions and significance
wording, and the λ the figure shows."""

import json

import numpy as np
import pytest

from bam_tf.experiments import report, report_lambda, report_results, report_summary


def _write_results(path, scores):
    """scores: {(method, seed): {task: accuracy}} → a results file with one line per (method, seed, task)."""
    with open(path, "w") as f:
        for (method, seed), per_task in scores.items():
            for task, value in per_task.items():
                f.write(json.dumps({"method": method, "seed": seed, "task": task, "metrics": {"accuracy": value},
                                    "score": value, "flags": {"backbone": "tiny"}}) + "\n")


def _grid(single, multi, bam, seeds, bam_no_anneal=None):
    grid = {}
    methods = (("single", single), ("multi", multi), ("bam", bam)) + ((("bam_no_anneal", bam_no_anneal),)
                                                                       if bam_no_anneal else ())
    for method, per_task in methods:
        for i, seed in enumerate(seeds):
            grid[(method, seed)] = {task: values[i] for task, values in per_task.items()}
    return grid


def _report(tmp_path, grid):
    """The report of `grid` (see _grid), written through a results file as the runner writes one."""
    _write_results(tmp_path / "r.jsonl", grid)
    return report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)


def _summary(tmp_path, grid):
    return _report(tmp_path, grid).split("## Dev scores")[0]


def test_summary_counts_tasks_and_seeds_and_says_why_nothing_is_significant(tmp_path):
    # Three seeds: bam above single on RTE (+0.05) and below on SST-2 (−0.02); above multi on both.
    grid = _grid(single={"RTE": [0.60, 0.61, 0.62], "SST-2": [0.90, 0.91, 0.92]},
                 multi={"RTE": [0.55, 0.56, 0.57], "SST-2": [0.80, 0.81, 0.82]},
                 bam={"RTE": [0.65, 0.66, 0.67], "SST-2": [0.88, 0.89, 0.90]}, seeds=[0, 1, 2])
    _write_results(tmp_path / "r.jsonl", grid)
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05, command="run it")
    summary = text.split("## Summary")[1].split("## Dev scores")[0]
    assert "**bam vs single**: bam's mean task score is higher on 1 of 2 tasks (RTE +5.0) and not higher on SST-2 -2.0." in summary
    # GLUE average: bam (0.765, 0.775, 0.785) vs single (0.75, 0.76, 0.77): +1.5 points, higher on every seed.
    assert ("GLUE average: +1.5 points (one-sided Mann-Whitney p = 0.1, 3 vs 3 seeds, not significant); bam is "
            "higher on 3 of 3 seeds compared seed by seed.") in summary
    assert "**bam vs multi**: bam's mean task score is higher on 2 of 2 tasks (SST-2 +8.0, RTE +10.0)." in summary
    # 3 vs 3: smallest p 0.05, times 2 tasks under Holm → nothing can be significant.
    assert summary.count("No task difference is significant after Holm at α = 0.05.") == 2
    # The averages' own one-sided test: bam above single on 8 of the 9 seed pairs → p = 2/C(6,3) = 0.1; above
    # multi on all 9 → p = 1/C(6,3) = 0.05, significant at α = 0.05: only single is left to the direction.
    assert "(one-sided Mann-Whitney p = 0.05, 3 vs 3 seeds); bam is higher on 3 of 3 seeds" in summary
    assert ("as the paper reports — but see the significance section: against single the evidence is the "
            "direction of the means, not a significant test.") in summary
    assert "- produced by: `run it`" in text and "--command='run it'" in text


def test_summary_names_significant_tasks_and_a_mixed_direction(tmp_path):
    # Five seeds, one task: bam's every score above single's → exact one-sided p = 1/C(10,5) = 1/252,
    # Holm over one task leaves it; bam below multi on every seed.
    seeds = [0, 1, 2, 3, 4]
    grid = _grid(single={"RTE": [0.50, 0.51, 0.52, 0.53, 0.54]}, multi={"RTE": [0.80, 0.81, 0.82, 0.83, 0.84]},
                 bam={"RTE": [0.60, 0.61, 0.62, 0.63, 0.64]}, seeds=seeds)
    text = _report(tmp_path, grid)
    summary = text.split("## Summary")[1].split("## Dev scores")[0]
    assert "Significant after Holm at α = 0.05: RTE." in summary
    assert "**bam vs multi**: bam's mean task score is higher on 0 of 1 tasks (none) and not higher on RTE -20.0." in summary
    assert "bam is higher on 0 of 5 seeds" in summary
    assert ("Direction: bam's GLUE average is above single (+10.0 points) and below multi (-20.0 points): "
            "these runs reproduce only part of the paper's claim.") in summary
    assert "produced by" not in text and "Incomplete grid" not in text


def test_summary_warns_when_methods_hold_different_seeds(tmp_path):
    grid = _grid(single={"RTE": [0.50, 0.51]}, multi={"RTE": [0.60, 0.61]}, bam={"RTE": [0.55, 0.56]}, seeds=[0, 1])
    del grid[("bam", 1)]
    text = _report(tmp_path, grid)
    assert "**Incomplete grid**: the methods hold different seeds (single: [0, 1]; multi: [0, 1]; bam: [0])" in text


def test_summary_warns_when_a_seed_misses_a_task(tmp_path):
    # bam seed 1 lost its SST-2 line: its GLUE average is left out, so means would mix seed sets unannounced.
    grid = _grid(single={"RTE": [0.50, 0.51], "SST-2": [0.9, 0.9]}, multi={"RTE": [0.60, 0.61], "SST-2": [0.9, 0.9]},
                 bam={"RTE": [0.55, 0.56], "SST-2": [0.9, 0.9]}, seeds=[0, 1])
    del grid[("bam", 1)]["SST-2"]
    text = _report(tmp_path, grid)
    assert ("**Incomplete grid**: the methods hold different seeds (single: [0, 1]; multi: [0, 1]; bam: [0, 1]; "
            "seeds with every task, which the GLUE averages use: single: [0, 1]; multi: [0, 1]; bam: [0])") in text


def test_summary_says_when_the_claim_is_not_reproduced(tmp_path):
    grid = _grid(single={"CoLA": [0.40, 0.42]}, multi={"CoLA": [0.41, 0.43]}, bam={"CoLA": [0.30, 0.31]}, seeds=[0, 1])
    text = _report(tmp_path, grid)
    assert "below single (-10.5 points) and below multi (-11.5 points): these runs reproduce neither part" in text
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_a_glue_difference_within_the_seed_spread_is_level_not_a_win(tmp_path):
    # bam vs multi: +0.5 points with per-seed stds 1.0 and 1.0 → level, though bam wins 2 of 3 seeds.
    # bam vs single: +5.0 points, well outside the spread → above.
    grid = _grid(single={"RTE": [0.60, 0.61, 0.62]}, multi={"RTE": [0.645, 0.665, 0.655]},
                 bam={"RTE": [0.65, 0.66, 0.67]}, seeds=[0, 1, 2])
    text = _report(tmp_path, grid)
    # the averages' test: U = 6 of 9 pairs; 7 of the C(6,3) = 20 splits reach U ≥ 6 → p = 0.35
    assert ("GLUE average: +0.5 points (one-sided Mann-Whitney p = 0.35, 3 vs 3 seeds, not significant); bam is "
            "higher on 2 of 3 seeds compared seed by seed.") in text
    assert ("Direction: bam's GLUE average is above single (+5.0 points) and level with multi (+0.5 points, "
            "no more than the seed-to-seed std of 1.0): these runs reproduce only part of the paper's claim.") in text


def test_glue_direction_thresholds_on_the_larger_seed_std():
    assert report_summary.glue_direction([0.70, 0.72], [0.70, 0.70]).word == "level"   # +1.0, std(bam) = 1.41
    assert report_summary.glue_direction([0.73, 0.75], [0.70, 0.70]).word == "above"   # +4.0 > 1.41
    assert report_summary.glue_direction([0.60, 0.62], [0.70, 0.70]).word == "below"
    single_seed = report_summary.glue_direction([0.71], [0.70])                         # no spread to compare with
    assert single_seed.word == "above" and single_seed.noise is None


def test_lambda_and_total_steps_are_the_ones_training_uses(tmp_path):
    np.testing.assert_allclose(report_lambda.annealed_lambda(4), [0.0, 0.25, 0.5, 0.75])  # step / T
    # Without the run folder: the schedule, ⌈3 · (100 + 28) / 32⌉ = 12 steps, capped by --max_train_steps.
    record = {"method": "bam", "seed": 0, "task": "RTE", "metrics": {"accuracy": 0.5}, "score": 0.5,
              "flags": {"num_train_epochs": 3, "train_batch_size": 32, "max_train_steps": 5},
              "train_examples": {"RTE": 100, "MRPC": 28}, "model_dir": str(tmp_path / "student")}
    assert report_lambda.bam_total_steps(report_results.Results([record]))[0] == 5
    record["flags"]["max_train_steps"] = 0
    assert report_lambda.bam_total_steps(report_results.Results([record]))[0] == 12
    # with the original's dataset multiples (RTE ×4; MRPC's own ×3): ⌈3 · (400 + 84) / 32⌉ = ⌈45.4⌉ = 46 steps
    record["flags"]["dataset_multiples"] = True
    assert report_lambda.bam_total_steps(report_results.Results([record]))[0] == 46
    del record["flags"]["dataset_multiples"]
    # The steps the results file recorded win over the schedule recomputed from the flags.
    assert report_lambda.bam_total_steps(report_results.Results([{**record, "training_steps": 9}]))[0] == 9
    # With it: the steps its training_summary.json records.
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "training_summary.json").write_text(json.dumps({"steps": 7}))
    assert report_lambda.bam_total_steps(report_results.Results([record])) == (7, str(tmp_path / "student" / "training_summary.json"))
    no_anneal = {**record, "method": "bam_no_anneal", "flags": {"distill_weight": 0.25}}
    assert report_lambda.no_anneal_lambda(report_results.Results([no_anneal])) == 0.75


def test_a_user_task_counts_in_the_average_without_being_registered(tmp_path):
    """A results file of a run with --task_defs: the report process never saw the definition file."""
    grid = _grid(single={"RTE": [0.60, 0.62], "paraphrase": [0.70, 0.72]},
                 multi={"RTE": [0.58, 0.60], "paraphrase": [0.74, 0.76]},
                 bam={"RTE": [0.61, 0.63], "paraphrase": [0.75, 0.77]}, seeds=[0, 1])
    text = _report(tmp_path, grid)
    # bam's average per seed: (0.61 + 0.75) / 2 = 0.68 and 0.70; single's 0.65 and 0.67 → +3.0 points.
    # Not a GLUE score with a task of the user's own in it: "Average", as training's table names it.
    assert "Average: +3.0 points (one-sided Mann-Whitney p = 0.1667, 2 vs 2 seeds, not significant); bam is higher on 2 of 2 seeds" in text
    assert "paraphrase" in text.split("## Dev scores")[1]
    assert "GLUE" not in text.split("## Runs")[0].replace("GLUE_DIR", ""), text
    assert "| method | RTE | paraphrase | Average |" in text and "Direction: bam's average is" in text
    glue_only = _grid(single={"RTE": [0.60, 0.62]}, multi={"RTE": [0.58, 0.60]}, bam={"RTE": [0.61, 0.63]}, seeds=[0, 1])
    _write_results(tmp_path / "g.jsonl", glue_only)
    text = report.build_report(str(tmp_path / "g.jsonl"), str(tmp_path / "g.md"), 0.05)
    assert "| method | RTE | GLUE average |" in text and "Direction: bam's GLUE average is" in text


def test_results_of_other_settings_joined_in_one_file_are_warned_about(tmp_path):
    def line(seed, task, score, epochs):
        return json.dumps({"method": "bam", "seed": seed, "task": task, "metrics": {"accuracy": score},
                           "score": score, "flags": {"backbone": "tiny", "seed": seed, "num_train_epochs": epochs}})
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([line(0, "RTE", 0.6, 1), line(1, "RTE", 0.7, 1), line(0, "RTE", 0.8, 15),
                               line(1, "CoLA", 0.5, 1)]) + "\n")
    text = report.build_report(str(path), str(tmp_path / "r.md"), 0.05)
    warnings = [row for row in text.splitlines() if row.startswith("- warning:")]
    assert warnings == [
        "- warning: bam seed 0 RTE has an earlier line from a run with other flags (--num_train_epochs: 1 → 15); "
        "the report uses the last line",
        "- warning: bam RTE: seed 1 ran with other flags than seed 0 (--num_train_epochs: 15 → 1); its means mix "
        "the two"]
    path.write_text("\n".join([line(0, "RTE", 0.6, 1), line(1, "RTE", 0.7, 1), line(0, "RTE", 0.8, 1)]) + "\n")
    assert "- warning:" not in report.build_report(str(path), str(tmp_path / "r.md"), 0.05)  # a rerun, same flags


def test_the_report_names_the_commit_steps_and_wall_time_of_every_run(tmp_path):
    steps = {("single", "RTE"): 234, ("single", "CoLA"): 802, ("multi", "RTE"): 4581, ("multi", "CoLA"): 4581}
    with open(tmp_path / "r.jsonl", "w") as f:
        for method, seed, commit, wall, dirty in [("single", 0, "a" * 40, 1800.0, False),
                                                  ("multi", 0, "b" * 40, 3000.0, True)]:
            for task in ("RTE", "CoLA"):
                model_dir = f"runs/{method}/teachers/{task}" if method == "single" else f"runs/{method}/student"
                f.write(json.dumps({"method": method, "seed": seed, "task": task, "metrics": {"accuracy": 0.5},
                                    "score": 0.5, "flags": {}, "git_commit": commit, "git_dirty": dirty,
                                    "wall_time_s": wall, "finished_at": "2026-12-01T19:00:00+00:00",
                                    "training_steps": steps[(method, task)], "model_dir": model_dir}) + "\n")
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)
    runs = text.split("## Runs")[1].split("## Figure")[0]
    # single: one teacher per task, 234 + 802 steps; multi: one student shared by both tasks.
    assert (f"| single | 0 | `{'a' * 12}` | 1036 in 2 models | 30.0 min | not recorded | "
            "2026-12-01T19:00:00+00:00 |") in runs
    assert f"| multi | 0 | `{'b' * 12} +changes` | 4581 | 50.0 min |" in runs


def test_the_report_names_each_runs_precision_and_warns_when_they_differ(tmp_path):
    avx512 = "CPU AMD EPYC, 2 cores, bfloat16 in hardware: avx512_bf16"
    runs = [("single", 0, "mixed_bfloat16", avx512), ("bam", 0, "mixed_bfloat16", avx512),
            ("single", 1, None, None), ("bam", 1, "float32", "CPU Intel Xeon, 2 cores, bfloat16 in hardware: none")]

    def write(rows):
        with open(tmp_path / "r.jsonl", "w") as f:
            for method, seed, precision, device in rows:
                record = {"method": method, "seed": seed, "task": "RTE", "metrics": {"accuracy": 0.5},
                          "score": 0.5, "flags": {}}
                if precision:
                    record.update(precision=precision, device=device)
                f.write(json.dumps(record) + "\n")
        return report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)

    text = write(runs)
    table = text.split("## Runs")[1]
    assert f"| bam | 0 | `unknown` | - | - | mixed_bfloat16, {avx512} |" in table
    assert "| single | 1 | `unknown` | - | - | not recorded |" in table
    summary = text.split("## Summary")[1].split("## Dev scores")[0]
    assert ("**Mixed precision**: the runs did not all compute in one precision (float32: bam 1; "
            "mixed_bfloat16: single 0, bam 0)") in summary
    # One known precision (and lines that lack it): nothing to warn about.
    assert "Mixed precision" not in write(runs[:3])
    assert "Several machines" not in write(runs[:3])  # one device named


def test_the_summary_says_when_runs_ran_on_different_machines(tmp_path):
    epyc = "CPU AMD EPYC, 2 cores, bfloat16 in hardware: avx512_bf16"
    xeon = "CPU Intel(R) Xeon(R) Processor, 2 cores, bfloat16 in hardware: amx_bf16, avx512_bf16"
    with open(tmp_path / "r.jsonl", "w") as f:
        for method, seed, device in [("single", 0, epyc), ("bam", 0, epyc), ("multi", 0, xeon)]:
            f.write(json.dumps({"method": method, "seed": seed, "task": "RTE", "metrics": {"accuracy": 0.5},
                                "score": 0.5, "flags": {}, "precision": "mixed_bfloat16", "device": device}) + "\n")
    summary = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05).split(
        "## Dev scores")[0]
    assert (f"**Several machines**: the runs did not all run on one device ({epyc}: single 0, bam 0; "
            f"{xeon}: multi 0)") in summary
    assert "Mixed precision" not in summary


def test_the_annealing_ablation_gets_its_own_verdict(tmp_path):
    # Five seeds: bam above bam_no_anneal on every seed (+3.0) → p = 1/252, significant; claims reproduced.
    seeds = [0, 1, 2, 3, 4]
    grid = _grid(single={"RTE": [0.50, 0.51, 0.52, 0.53, 0.54]}, multi={"RTE": [0.50, 0.51, 0.52, 0.53, 0.54]},
                 bam={"RTE": [0.60, 0.61, 0.62, 0.63, 0.64]}, seeds=seeds,
                 bam_no_anneal={"RTE": [0.57, 0.58, 0.59, 0.60, 0.61]})
    text = _report(tmp_path, grid)
    summary = text.split("## Summary")[1].split("## Dev scores")[0]
    assert "**bam vs bam_no_anneal**: bam's mean task score is higher on 1 of 1 tasks (RTE +3.0)." in summary
    assert ("Teacher annealing: bam's GLUE average is above bam_no_anneal (fixed λ) (+3.0 points): annealing "
            "helped, as the paper reports.") in summary
    # The ablation does not enter the headline verdict, which is about single and multi only.
    assert "above both single-task teachers and plain multi-task training, by more than the seed-to-seed spread" in summary
    assert "### bam vs bam_no_anneal" in text.split("## Significance")[1]


def test_annealing_is_significant_by_its_average_when_no_task_is(tmp_path):
    # bam 5 seeds, bam_no_anneal 3 (a grid still running). Per task one fixed-λ score beats a bam score:
    # RTE U = 14 of 15 and MRPC U = 13 → p ≥ 2/C(8,3) = 0.0357 each, Holm over two tasks → ≥ 0.071, none
    # significant. The averages (bam 0.70, 0.70, 0.71, 0.71, 0.72; fixed λ 0.6875, 0.685, 0.6925) are all
    # above → p = 1/C(8,3) = 0.01786 ≤ 0.05; +2.0 points against a seed std of 0.8.
    grid = _grid(single={"RTE": [0.50] * 5, "MRPC": [0.70] * 5}, multi={"RTE": [0.50] * 5, "MRPC": [0.70] * 5},
                 bam={"RTE": [0.60, 0.61, 0.62, 0.63, 0.64], "MRPC": [0.80, 0.79, 0.80, 0.79, 0.80]},
                 seeds=[0, 1, 2, 3, 4],
                 bam_no_anneal={"RTE": [0.58, 0.59, 0.605, 0, 0], "MRPC": [0.795, 0.78, 0.78, 0, 0]})
    for seed in (3, 4):
        del grid[("bam_no_anneal", seed)]
    summary = _summary(tmp_path, grid)
    assert ("GLUE average: +2.0 points (one-sided Mann-Whitney p = 0.01786, 5 vs 3 seeds); bam is higher on 3 of 3 "
            "seeds compared seed by seed. No task difference is significant after Holm at α = 0.05.") in summary
    assert ("Teacher annealing: bam's GLUE average is above bam_no_anneal (fixed λ) (+2.0 points): annealing "
            "helped, as the paper reports.") in summary


def test_annealing_above_the_spread_without_a_significant_test_is_a_direction_only(tmp_path):
    # Two seeds each, bam higher on both: the average's p = 1/C(4,2) = 0.167.
    grid = _grid(single={"RTE": [0.50, 0.51]}, multi={"RTE": [0.50, 0.51]}, bam={"RTE": [0.60, 0.61]},
                 seeds=[0, 1], bam_no_anneal={"RTE": [0.55, 0.56]})
    text = _report(tmp_path, grid)
    assert "(one-sided Mann-Whitney p = 0.1667, 2 vs 2 seeds, not significant)" in text
    assert "annealing helped, as the paper reports (direction only, not significant)." in text


def test_annealing_within_the_spread_is_not_called_a_win(tmp_path):
    grid = _grid(single={"RTE": [0.50, 0.52]}, multi={"RTE": [0.50, 0.52]}, bam={"RTE": [0.60, 0.64]},
                 seeds=[0, 1], bam_no_anneal={"RTE": [0.61, 0.62]})
    text = _report(tmp_path, grid)
    # +0.5 points against a seed std of 2.8 (bam: 0.60, 0.64).
    assert ("Teacher annealing: bam's GLUE average is level with bam_no_anneal (fixed λ) (+0.5 points, no more "
            "than the seed-to-seed std of 2.8): no difference beyond the seed spread") in text


def test_one_seed_is_not_said_to_beat_a_spread(tmp_path):
    grid = _grid(single={"RTE": [0.50]}, multi={"RTE": [0.51]}, bam={"RTE": [0.60]}, seeds=[0])
    text = _report(tmp_path, grid)
    assert "one seed per method: there is no seed-to-seed spread to weigh the differences against" in text
    assert "by more than the seed-to-seed spread" not in text
    assert "bam vs bam_no_anneal" not in text.split("## Significance")[0]   # no ablation in this grid


def test_the_cost_of_a_seed_leaves_out_resumed_runs(tmp_path):
    with open(tmp_path / "r.jsonl", "w") as f:
        for method, seed, wall, resumed in [("single", 0, 1800.0, False), ("single", 1, 2400.0, False),
                                            ("single", 2, 2000.0, False), ("multi", 0, 3600.0, False),
                                            ("multi", 1, 600.0, True)]:
            f.write(json.dumps({"method": method, "seed": seed, "task": "RTE", "metrics": {"accuracy": 0.5},
                                "score": 0.5, "flags": {}, "wall_time_s": wall, "resumed": resumed}) + "\n")
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)
    # single: median of 30, 40, 33.3 min = 33.3; multi: 60 (the resumed 10 min is only its last part).
    assert "single 33.3 min, multi 60.0 min; all 2 methods 1.6 h." in text
    assert "| multi | 1 | `unknown` | - | 10.0 min (resumed) |" in text
    assert "Not in the cost" not in text


def test_a_method_with_no_whole_run_is_named_not_dropped_from_the_cost(tmp_path):
    with open(tmp_path / "r.jsonl", "w") as f:
        for method, seed, wall, resumed in [("single", 0, 1800.0, False), ("bam", 0, 600.0, True)]:
            f.write(json.dumps({"method": method, "seed": seed, "task": "RTE", "metrics": {"accuracy": 0.5},
                                "score": 0.5, "flags": {}, "wall_time_s": wall, "resumed": resumed}) + "\n")
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)
    assert "): single 30.0 min." in text
    assert "Not in the cost: bam (no run of it was timed whole" in text


def test_a_baseline_results_file_is_compared_method_by_method_and_task_by_task(tmp_path):
    # The same two methods at a larger budget: bam +3.0 on RTE on every seed, single unchanged.
    low = _grid(single={"RTE": [0.60, 0.61, 0.62, 0.63, 0.64]}, multi={"RTE": [0.5] * 5},
                bam={"RTE": [0.62, 0.63, 0.64, 0.65, 0.66]}, seeds=[0, 1, 2, 3, 4])
    high = {key: ({task: value + 0.03 for task, value in per_task.items()} if key[0] == "bam" else per_task)
            for key, per_task in low.items() if key[0] != "multi"}
    _write_results(tmp_path / "low.jsonl", low)
    _write_results(tmp_path / "high.jsonl", high)
    text = report.build_report(str(tmp_path / "high.jsonl"), str(tmp_path / "high.md"), 0.05,
                               baseline_file=str(tmp_path / "low.jsonl"))
    section = text.split("## Against the baseline results")[1].split("## Runs")[0]
    rows = [line for line in section.splitlines() if line.startswith("| bam |") or line.startswith("| single |")]
    assert "multi" not in section.split("| method |")[1]  # only methods in both files
    bam_rte = next(r for r in rows if r.startswith("| bam | RTE |"))
    # bam: 67.0 ± 1.6 here vs 64.0 ± 1.6 in the baseline → +3.0, over 5 seeds each
    assert "| +3.0 |" in bam_rte and "(5)" in bam_rte
    single_rte = next(r for r in rows if r.startswith("| single | RTE |"))
    assert "| 0.0 |" in single_rte and "| 1 |" in single_rte  # identical scores: p = 1, no sign on a zero
    assert "--baseline_results=" in text
    # In words: bam's scores here 0.65–0.69 against 0.62–0.66 (two ties) → two-sided p = 10/252 = 0.03968 (of the
    # C(10, 5) = 252 equally likely splits, 10 have a U as extreme; the table's p);
    # one task, so Holm leaves it as it is.
    assert ("- **bam**: RTE +3.0; GLUE average +3.0 (two-sided p = 0.03968, one test). "
            "Significant after Holm: RTE.") in section
    assert "- **single**: RTE 0.0; GLUE average 0.0 (two-sided p = 1, one test). No task difference" in section
    assert "different bam_tf commits" not in section  # neither file names a commit: both "unknown"


def test_a_baseline_from_another_commit_is_said_to_differ_in_code_too(tmp_path):
    for name, commit in (("here", "a" * 40), ("base", "b" * 40)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for seed in (0, 1):
                f.write(json.dumps({"method": "bam", "seed": seed, "task": "RTE", "metrics": {"accuracy": 0.5},
                                    "score": 0.5, "flags": {}, "git_commit": commit}) + "\n")
    text = report.build_report(str(tmp_path / "here.jsonl"), str(tmp_path / "here.md"), 0.05,
                               baseline_file=str(tmp_path / "base.jsonl"))
    assert (f"different bam_tf commits (here: {'a' * 12}; baseline: {'b' * 12}): a difference below is the "
            "settings' and whatever the code changed") in text


def test_against_a_baseline_with_other_tasks_the_glue_averages_cover_the_shared_tasks(tmp_path):
    here = _grid(single={"RTE": [0.6] * 3, "SST-2": [0.9] * 3, "CoLA": [0.3] * 3}, multi={"RTE": [0.5] * 3},
                 bam={"RTE": [0.6] * 3, "SST-2": [0.9] * 3, "CoLA": [0.3] * 3}, seeds=[0, 1, 2])
    del here[("multi", 0)], here[("multi", 1)], here[("multi", 2)]
    baseline = {key: {t: v for t, v in per_task.items() if t != "CoLA"} for key, per_task in here.items()}
    _write_results(tmp_path / "here.jsonl", here)
    _write_results(tmp_path / "base.jsonl", baseline)
    text = report.build_report(str(tmp_path / "here.jsonl"), str(tmp_path / "here.md"), 0.05,
                               baseline_file=str(tmp_path / "base.jsonl"))
    section = text.split("## Against the baseline results")[1].split("## Runs")[0]
    assert "both over the tasks they share: SST-2, RTE." in section
    # Same RTE and SST-2 scores in both files: the averages over those two are equal (CoLA's 30.0 would give −15.0).
    bam_glue = next(line for line in section.splitlines() if line.startswith("| bam | GLUE average |"))
    assert "| 75.0 ± 0.0 (3) | 75.0 ± 0.0 (3) | 0.0 |" in bam_glue


def test_a_notes_file_becomes_the_notes_section(tmp_path):
    import pytest

    from bam_tf.experiments.results_file import ExperimentError

    _write_results(tmp_path / "r.jsonl", _grid(single={"RTE": [0.6, 0.7]}, multi={"RTE": [0.5, 0.6]},
                                               bam={"RTE": [0.7, 0.8]}, seeds=[0, 1]))
    (tmp_path / "notes.md").write_text("Cost estimate: 4581 steps × 1.2 s ≈ 92 min a student.\n", encoding="utf-8")
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05,
                               notes_file=str(tmp_path / "notes.md"))
    assert "\n## Notes\n\nCost estimate: 4581 steps × 1.2 s ≈ 92 min a student.\n" in text
    assert f"--notes={tmp_path / 'notes.md'}`" in text  # the command that regenerates it
    with pytest.raises(ExperimentError, match="missing.md: cannot read the notes file"):
        report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r2.md"), 0.05,
                            notes_file=str(tmp_path / "missing.md"))
    assert not (tmp_path / "r2.md").exists() and not (tmp_path / "r2.png").exists()


def test_a_baseline_sharing_no_task_says_so_instead_of_an_empty_table(tmp_path):
    _write_results(tmp_path / "here.jsonl", _grid(single={"RTE": [0.6]}, multi={"RTE": [0.5]}, bam={"RTE": [0.7]},
                                                  seeds=[0]))
    _write_results(tmp_path / "base.jsonl", _grid(single={"CoLA": [0.3]}, multi={"CoLA": [0.2]},
                                                  bam={"CoLA": [0.4]}, seeds=[0]))
    text = report.build_report(str(tmp_path / "here.jsonl"), str(tmp_path / "here.md"), 0.05,
                               baseline_file=str(tmp_path / "base.jsonl"))
    section = text.split("## Against the baseline results")[1].split("## Runs")[0]
    assert "The two files share no task (here: RTE; baseline: CoLA): nothing to compare." in section
    assert "| method | task |" not in section


def test_a_report_that_cannot_be_made_writes_nothing_and_says_why(tmp_path):
    import pytest

    from bam_tf.experiments.results_file import ExperimentError
    from bam_tf.user_errors import InputError

    grid = _grid(single={"RTE": [0.5, 0.6]}, multi={"RTE": [0.5, 0.6]}, bam={"RTE": [0.6, 0.7]}, seeds=[0, 1])
    results = str(tmp_path / "r.jsonl")
    _write_results(results, grid)
    folder = tmp_path / "out"
    folder.mkdir()
    for output, alpha, match in [
            (str(tmp_path / "fig.png"), 0.05, "name the Markdown file"),  # the figure would overwrite it
            (str(folder), 0.05, "is a folder, not a file"),
            (results + "/x.md", 0.05, "is a file, so nothing can be made below it"),
            (str(tmp_path / "r.md"), 0.0, r"--alpha must be a significance level in \(0, 1\), got 0.0"),
            (str(tmp_path / "r.md"), 5.0, r"--alpha must be a significance level in \(0, 1\), got 5.0")]:
        with pytest.raises(InputError, match=match):
            report.build_report(results, output, alpha)
    with pytest.raises(ExperimentError, match=r"--results_file=.*r.jsonI: no such file"):
        report.build_report(str(tmp_path / "r.jsonI"), str(tmp_path / "r.md"))
    with pytest.raises(ExperimentError, match=r"--baseline_results=.*none.jsonl: no such file"):
        report.build_report(results, str(tmp_path / "r.md"), baseline_file=str(tmp_path / "none.jsonl"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.jsonl"]  # no PNG, no Markdown left behind
    assert not list(folder.iterdir())


def test_an_alpha_no_seed_count_reaches_and_a_truncated_baseline_are_said(tmp_path):
    grid = _grid(single={"RTE": [0.5, 0.6]}, multi={"RTE": [0.5, 0.6]}, bam={"RTE": [0.6, 0.7]}, seeds=[0, 1])
    _write_results(tmp_path / "r.jsonl", grid)
    _write_results(tmp_path / "b.jsonl", grid)
    with open(tmp_path / "b.jsonl", "a") as f:
        f.write('{"method": "bam", "se')  # a run killed while appending
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 1e-60,
                               baseline_file=str(tmp_path / "b.jsonl"))
    assert "that needs more than 100 seeds per method." in text
    assert "--alpha=1e-60 --baseline_results=" in text  # the command quoted reruns this report
    assert "--alpha=0.012345678`" in report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.012345678)
    assert f"- warning: {tmp_path / 'b.jsonl'}: ignoring a truncated last line" in text
    assert (tmp_path / "r.png").exists() and (tmp_path / "r.md").exists()


def test_paths_under_a_tilde_no_shell_expanded_are_read_and_written_at_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _write_results(tmp_path / "r.jsonl", _grid(single={"RTE": [0.6, 0.7]}, multi={"RTE": [0.5, 0.6]},
                                               bam={"RTE": [0.7, 0.8]}, seeds=[0, 1]))
    (tmp_path / "notes.md").write_text("a note\n", encoding="utf-8")
    text = report.build_report("~/r.jsonl", "~/r.md", 0.05, baseline_file="~/r.jsonl", notes_file="~/notes.md")
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == text and (tmp_path / "r.png").is_file()
    assert "\n## Notes\n\na note\n" in text and "## Against the baseline results" in text


def test_a_significant_average_within_the_spread_is_above_not_level(tmp_path):
    # bam 0.70..0.74; the others one low seed (0.55) and four just under 0.70: +5.0 points against a std of
    # 6.7 (level by the spread), but every bam seed is above every other seed → p = 1/C(10,5) = 0.003968.
    others = [0.55, 0.699, 0.6995, 0.6998, 0.6999]
    grid = _grid(single={"RTE": others}, multi={"RTE": others}, bam={"RTE": [0.70, 0.71, 0.72, 0.73, 0.74]},
                 seeds=[0, 1, 2, 3, 4], bam_no_anneal={"RTE": others})
    summary = _summary(tmp_path, grid)
    assert ("Direction: bam's GLUE average is above both single-task teachers and plain multi-task training (against "
            "single and multi by less than the seed-to-seed spread, but significantly), as the paper reports.") in summary
    assert ("above bam_no_anneal (fixed λ) (+5.0 points: within the seed-to-seed std of 6.7, but the averages' "
            "one-sided test is significant): annealing helped, as the paper reports.") in summary
    assert "not reproduced" not in summary and "neither" not in summary


def test_equal_scores_are_level_and_print_no_sign(tmp_path):
    # One seed, every method 0.6: no direction. Three seeds in another order: the means differ by ~1e-17.
    grid = _grid(single={"RTE": [0.6]}, multi={"RTE": [0.6]}, bam={"RTE": [0.6]}, seeds=[0],
                 bam_no_anneal={"RTE": [0.6]})
    summary = _summary(tmp_path, grid)
    assert "Direction: bam's GLUE average is level with single (0.0 points) and level with multi (0.0 points)" in summary
    assert "below" not in summary and "+0.0" not in summary and "-0.0" not in summary
    grid = _grid(single={"RTE": [0.3, 0.2, 0.1]}, multi={"RTE": [0.3, 0.2, 0.1]}, bam={"RTE": [0.1, 0.2, 0.3]},
                 seeds=[0, 1, 2])
    text = _report(tmp_path, grid)
    assert "**bam vs single**: bam's mean task score is higher on 0 of 1 tasks (none) and not higher on RTE 0.0." in text


def test_too_few_seeds_is_said_of_the_tasks_and_names_the_seeds_a_running_method_still_needs(tmp_path):
    # bam 5 seeds, bam_no_anneal 3, five tasks: Holm's smallest adjusted p is 5/C(8,3) = 0.089 > 0.05; with
    # 4 fixed-λ seeds it would be 5/C(9,4) = 0.0397; equal seeds need 5 each (5/C(10,5) = 0.0198; 5/C(8,4) = 0.071).
    tasks = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
    bam = {t: [0.60, 0.61, 0.62, 0.63, 0.64] for t in tasks}
    grid = _grid(single=bam, multi=bam, bam=bam, seeds=[0, 1, 2, 3, 4],
                 bam_no_anneal={t: [0.50, 0.51, 0.52, 0, 0] for t in tasks})
    for seed in (3, 4):
        del grid[("bam_no_anneal", seed)]
    _write_results(tmp_path / "r.jsonl", grid)
    section = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05).split(
        "### bam vs bam_no_anneal")[1]
    assert ("**With these n no task can be significant after Holm at α = 0.05, whatever the scores**: that needs "
            "n ≥ 5 seeds per method (1 / C(10, 5) · 5 ≤ 0.05), or 4 bam_no_anneal seeds beside bam's 5.") in section
    assert "With n = 5 vs 3 seeds" in section


def test_the_seed_counts_of_the_closing_paragraph_are_one_tasks(tmp_path):
    # RTE: bam 5 seeds vs single 3; SST-2: bam 3 vs single 5. Either task's smallest p is 1/C(8,3); never 5 vs 5.
    grid = _grid(single={"RTE": [0.5] * 5, "SST-2": [0.5] * 5}, multi={"RTE": [0.5] * 5, "SST-2": [0.5] * 5},
                 bam={"RTE": [0.6] * 5, "SST-2": [0.6] * 5}, seeds=[0, 1, 2, 3, 4])
    for seed in (3, 4):
        del grid[("single", seed)]["RTE"]
        del grid[("bam", seed)]["SST-2"]
    _write_results(tmp_path / "r.jsonl", grid)
    section = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05).split(
        "### bam vs single")[1].split("###")[0]
    assert "With n = 3 vs 5 seeds the smallest one-sided exact p is 1 / C(8, 3) = 0.01786" in section  # SST-2, first
    assert "5 vs 5" not in section


def test_a_diverged_run_is_left_out_and_named(tmp_path):
    grid = _grid(single={"RTE": [0.50, 0.51]}, multi={"RTE": [0.55, 0.56]}, bam={"RTE": [0.60, float("nan")]},
                 seeds=[0, 1])
    text = _report(tmp_path, grid)
    assert "- warning: left out, score not a finite number (a diverged run?): bam seed 1 RTE" in text
    assert "bam (seeds [0])" in text
    (tmp_path / "nan.jsonl").write_text(json.dumps({"method": "bam", "seed": 0, "task": "RTE", "metrics": {},
                                                    "score": float("nan")}) + "\n")
    with pytest.raises(report.ExperimentError, match="nan.jsonl: no result with a finite score"):
        report.build_report(str(tmp_path / "nan.jsonl"), str(tmp_path / "nan.md"), 0.05)


def test_a_line_without_flags_is_reported(tmp_path):
    (tmp_path / "r.jsonl").write_text(json.dumps({"method": "bam", "seed": 0, "task": "RTE",
                                                  "metrics": {"accuracy": 0.6}, "score": 0.6}) + "\n")
    assert "- backbone `unknown`, tasks RTE" in report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05)


def test_a_task_some_methods_lack_is_named_and_no_verdict_is_drawn(tmp_path):
    grid = _grid(single={"RTE": [0.5, 0.51, 0.52], "SST-2": [0.9, 0.91, 0.92]}, multi={"RTE": [0.55, 0.56, 0.57]},
                 bam={"RTE": [0.6, 0.61, 0.62]}, seeds=[0, 1, 2])
    summary = _summary(tmp_path, grid)
    assert ("**Incomplete grid**: not every method has every task (multi: no SST-2; bam: no SST-2); a method without "
            "a task has no GLUE average, so its comparisons below are task by task only.") in summary
    assert "different seeds" not in summary
    assert ("No verdict on the paper's claim: it is read off the GLUE averages, and bam, multi have none (no seed "
            "with every task).") in summary


def test_a_task_significant_after_holm_does_not_lift_a_level_average(tmp_path):
    # RTE: bam above single on every seed (p = 1/252, Holm over 2 tasks: 0.0079). SST-2 pulls two bam seeds
    # down: averages bam 0.65, 0.78, 0.79, 0.80, 0.72 vs single 0.70 ... 0.74: +2.8 points against a std of 6.3,
    # and the averages' test is not significant (U = 17.5 of 25) → level, whatever RTE's test says.
    single = {"RTE": [0.50, 0.51, 0.52, 0.53, 0.54], "SST-2": [0.90, 0.91, 0.92, 0.93, 0.94]}
    grid = _grid(single=single, multi=single, seeds=[0, 1, 2, 3, 4],
                 bam={"RTE": [0.60, 0.61, 0.62, 0.63, 0.64], "SST-2": [0.70, 0.95, 0.96, 0.97, 0.80]})
    summary = _summary(tmp_path, grid)
    assert "Significant after Holm at α = 0.05: RTE." in summary
    assert "level with single (+2.8 points, no more than the seed-to-seed std of 6.3)" in summary
    assert "reproduce neither part of the paper's claim" in summary


def test_a_consistent_difference_below_a_tenth_of_a_point_keeps_its_sign(tmp_path):
    grid = _grid(single={"RTE": [0.7] * 3}, multi={"RTE": [0.7] * 3}, bam={"RTE": [0.7004] * 3}, seeds=[0, 1, 2],
                 bam_no_anneal={"RTE": [0.7] * 3})
    summary = _summary(tmp_path, grid)
    assert "**bam vs single**: bam's mean task score is higher on 1 of 1 tasks (RTE +0.04)." in summary
    assert "Direction: bam's GLUE average is above both single-task teachers and plain multi-task training" in summary
    assert "above bam_no_anneal (fixed λ) (+0.04 points): annealing helped" in summary
    assert "0.0 points" not in summary


def test_one_seed_without_a_difference_claims_no_spread(tmp_path):
    grid = _grid(single={"RTE": [0.5]}, multi={"RTE": [0.5]}, bam={"RTE": [0.6]}, seeds=[0],
                 bam_no_anneal={"RTE": [0.6]})
    text = _report(tmp_path, grid)
    assert ("Teacher annealing: bam's GLUE average is level with bam_no_anneal (fixed λ) (0.0 points; one seed per "
            "method: no spread to weigh it against): no difference: the paper's ablation is not reproduced.") in text


def test_the_seeds_still_needed_are_named_for_whichever_method_has_fewer(tmp_path):
    tasks = ("CoLA", "SST-2", "MRPC", "STS-B", "RTE")
    low = {t: [0.50, 0.51, 0.52, 0.53, 0.54] for t in tasks}
    grid = _grid(single=low, multi=low, bam={t: [0.60, 0.61, 0.62, 0, 0] for t in tasks}, seeds=[0, 1, 2, 3, 4])
    for seed in (3, 4):
        del grid[("bam", seed)]
    _write_results(tmp_path / "r.jsonl", grid)
    section = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05).split(
        "### bam vs single")[1].split("###")[0]
    assert "that needs n ≥ 5 seeds per method (1 / C(10, 5) · 5 ≤ 0.05), or 4 bam seeds beside single's 5." in section


def test_a_diverged_baseline_run_is_named(tmp_path):
    grid = _grid(single={"RTE": [0.50, 0.51]}, multi={"RTE": [0.55, 0.56]}, bam={"RTE": [0.60, 0.61]}, seeds=[0, 1])
    _write_results(tmp_path / "r.jsonl", grid)
    grid[("multi", 1)]["RTE"] = float("nan")
    _write_results(tmp_path / "base.jsonl", grid)
    text = report.build_report(str(tmp_path / "r.jsonl"), str(tmp_path / "r.md"), 0.05,
                               baseline_file=str(tmp_path / "base.jsonl"))
    assert "- warning: left out of the baseline, score not a finite number: multi seed 1 RTE" in text
    assert "| multi | RTE | 55.5 ± 0.7 (2) | 55.0 (1) |" in text


def test_a_missing_task_and_missing_seeds_are_both_said(tmp_path):
    grid = _grid(single={"RTE": [0.5, 0.51, 0.52], "SST-2": [0.9, 0.91, 0.92]},
                 multi={"RTE": [0.55, 0.56, 0.57], "SST-2": [0.9, 0.91, 0.92]},
                 bam={"RTE": [0.6, 0.61, 0.62], "SST-2": [0.9, 0.91, 0.92]}, seeds=[0, 1, 2],
                 bam_no_anneal={"RTE": [0.6, 0.61, 0.62]})
    del grid[("single", 2)]
    summary = _summary(tmp_path, grid)
    assert "not every method has every task (bam_no_anneal: no SST-2)" in summary
    assert "the methods hold different seeds (single: [0, 1]; multi: [0, 1, 2]; bam: [0, 1, 2])" in summary
    assert ("No verdict on teacher annealing: it is read off the GLUE averages, and bam_no_anneal has none (no seed "
            "with every task).") in summary
