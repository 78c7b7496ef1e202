#!/usr/bin/env bash
# Commits an experiment's results file each time the runner appends a finished (method, seed) to it, and
# any further paths given (e.g. the runner's --teacher_outputs_store), so no finished run is lost when a
# session ends mid-grid. Run it beside the runner, from the repo root:
#   tools/commit_finished_runs.sh results/cpu_mini_glue_faithful.jsonl results/cpu_mini_glue_faithful_teacher_outputs &
# It commits those paths only (nothing else staged is touched) and polls every 30 s; stop it with kill.
set -u
results=${1:?usage: tools/commit_finished_runs.sh RESULTS_FILE [MORE_PATHS...]}
name=$(basename "$results" .jsonl)
while true; do
  existing=()
  for path in "$@"; do [ -e "$path" ] && existing+=("$path"); done
  if [ ${#existing[@]} -gt 0 ] && [ -n "$(git status --porcelain --untracked-files=all -- "${existing[@]}")" ]; then
    if [ -n "$(git status --porcelain -- "$results" 2>/dev/null)" ]; then
      run=$(tail -n 1 "$results" | python3 -c 'import json, sys; r = json.loads(sys.stdin.read()); print(r["method"], "seed", r["seed"])' 2>/dev/null)
      message="$name: ${run:-a run} finished"
    else
      message="$name: teacher outputs kept"
    fi
    if git add -- "${existing[@]}" && git commit -q -m "$message" -- "${existing[@]}"; then
      echo "$(date -u +%H:%M:%S) committed $message"
    fi
  fi
  sleep 30
done
