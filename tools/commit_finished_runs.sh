#!/usr/bin/env bash
# Commits an experiment's results file each time the runner appends a finished (method, seed) to it, so
# no finished run is lost when a session ends mid-grid. Run it beside the runner, from the repo root:
#   tools/commit_finished_runs.sh results/cpu_mini_glue_faithful.jsonl &
# It commits that one path only (nothing else staged is touched) and polls every 30 s; stop it with kill.
set -u
results=${1:?usage: tools/commit_finished_runs.sh RESULTS_FILE}
name=$(basename "$results" .jsonl)
while true; do
  if [ -f "$results" ] && ! git diff --quiet HEAD -- "$results" 2>/dev/null || \
     { [ -f "$results" ] && ! git ls-files --error-unmatch "$results" >/dev/null 2>&1; }; then
    run=$(tail -n 1 "$results" | python3 -c 'import json, sys; r = json.loads(sys.stdin.read()); print(r["method"], "seed", r["seed"])' 2>/dev/null)
    if git add -- "$results" && git commit -q -m "$name: ${run:-a run} finished" -- "$results"; then
      echo "$(date -u +%H:%M:%S) committed $name: ${run:-?}"
    fi
  fi
  sleep 30
done
