#!/usr/bin/env bash
# The main job on the built-in synthetic data: a baseline and its Mirror Gradient twin,
# then the stress tests, ending with the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
RR="${RR:-.venv/bin/robustrec}"
MODEL="${MODEL:-lightgcn}"

"$RR" train --model "$MODEL" --overwrite --threads 2
"$RR" train --model "$MODEL" --mg --overwrite --threads 2
