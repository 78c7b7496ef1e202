"""Seeded grids of methods (does BAM beat its teachers?): what each method trains, the plan and the runner
(`experiment`, `methods`, `pipeline_backend`), the JSON-lines results file (`results_file`), the report
with its statistics (`report`) and the command line (`runner_cli`: `bam-experiments`,
`python tools/run_experiments.py`).

Nothing here imports TensorFlow except `pipeline_backend`, which runs BamPipeline; a --dry_run never
loads it.
"""
