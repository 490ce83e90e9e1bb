#!/usr/bin/env bash
# The runs behind docs/results.md: four sweeps, then one analysis each. About 25 minutes on a
# 2-core CPU. Usage: bash experiments/run_all.sh [storage folder, default results/docs]
set -euo pipefail
cd "$(dirname "$0")/.."
storage=${1:-results/docs}
for name in paper_digits blog_digits blog_fashion paper_fashion; do
    if [ ! -f "$storage/$name/state.json" ]; then
        if [ -d "$storage/$name" ]; then
            .venv/bin/sweep resume "$storage/$name" --num-cpus 2
        else
            .venv/bin/sweep run --config "experiments/$name.yaml" --name "$name" \
                --storage "$storage" --num-cpus 2 --seed 0
        fi
    fi
    .venv/bin/sweep analyze "$storage/$name" --out "docs/results/$name"
done
