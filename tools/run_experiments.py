# python tools/run_experiments.py --flagfile=configs/experiments/<name>.flags [--dry_run]
#
# The experiment runner, also installed as `bam-experiments`. Flags, methods and the results file:
# bam_tf/experiments/runner_cli.py (which --help prints).

from bam_tf.experiments.runner_cli import console_main

if __name__ == "__main__":
    console_main()
