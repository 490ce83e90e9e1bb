#!/usr/bin/env bash
# The runs behind docs/results.md: four sweeps and six fixed seed grids, then one analysis per
# experiment (sweep and grid pooled). About 40 minutes on a 2-core CPU, plus about 70 for the
# paper's protocol on Fashion-MNIST (two processes of one thread each share that grid).
# Usage: bash experiments/run_all.sh [storage folder, default results/docs]
set -euo pipefail
cd "$(dirname "$0")/.."
storage=${1:-results/docs}
for name in paper_digits blog_digits blog_fashion paper_fashion; do
    if [ -f "$storage/$name/state.json" ]; then continue; fi
    if [ -d "$storage/$name" ]; then
        .venv/bin/sweep resume "$storage/$name" --num-cpus 2
    else
        .venv/bin/sweep run --config "experiments/$name.yaml" --name "$name" \
            --storage "$storage" --num-cpus 2 --seed 0
    fi
done
for grid in grid_blog_digits grid_paper_digits grid_blog_fashion grid_fashion_long \
            grid_paper_protocol_digits; do
    [ -d "$storage/$grid" ] || .venv/bin/python experiments/seed_grid.py "$grid" --storage "$storage"
done
# finished trials are skipped, so an interrupted grid picks up where it stopped
pids=()
for shard in 0/2 1/2; do
    .venv/bin/python experiments/seed_grid.py grid_paper_protocol_fashion --storage "$storage" \
        --shard "$shard" --threads 1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done  # each shard's failure stops the script
analyze() { .venv/bin/sweep analyze "$@"; }
analyze "$storage/paper_digits" "$storage/grid_paper_digits" --out docs/results/paper_digits --target 0.95
analyze "$storage/blog_digits" "$storage/grid_blog_digits" --out docs/results/blog_digits --target 0.90
analyze "$storage/blog_fashion" "$storage/grid_blog_fashion" --out docs/results/blog_fashion --target 0.85
analyze "$storage/paper_fashion" "$storage/grid_fashion_long" --out docs/results/paper_fashion --target 0.88
analyze "$storage/grid_paper_protocol_digits" --out docs/results/paper_protocol_digits --target 0.95
analyze "$storage/grid_paper_protocol_fashion" --out docs/results/paper_protocol_fashion --target 0.90
