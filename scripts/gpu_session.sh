#!/usr/bin/env bash
# One call on a lent GPU machine: the throughput benchmark, then the suite's runs shared by
# WORKERS processes on the one GPU (each takes the next unclaimed run, in the order of the batches
# given), every record packed into OUT/records.tgz as it is written. A device call returns at most
# eight files, so the records travel as one archive; one killed at the call's limit still returns
# what had finished.
#
#   bash scripts/gpu_session.sh OUT DEADLINE_S WORKERS BATCH...
#
# Needs data/fashion-mnist/*.gz in the checkout (carried to the machine) and, where the machine
# has no .git, MDQ_GIT_COMMIT / MDQ_GIT_DIRTY in the environment (see mdq_teach.experiments.results).
set -u
if [ $# -lt 4 ]; then
    echo "usage: bash scripts/gpu_session.sh OUT DEADLINE_S WORKERS BATCH..." >&2
    exit 2
fi
out=$1 deadline=$2 workers=$3
shift 3
records=$out/records
claims=$(mktemp -d)
mkdir -p "$records"

pack() {
    tar czf "$out/records.tgz.part" -C "$records" . && mv "$out/records.tgz.part" "$out/records.tgz"
}
(while sleep 10; do pack; done) &
packer=$!

nvidia-smi >"$out/nvidia-smi.txt" 2>&1
if [ "${THROUGHPUT:-1}" != 0 ]; then  # THROUGHPUT=0: a later call of the same session skips it
    python3 benchmarks/gpu_throughput.py --arch resnet18 --data-root data --results-dir "$records" \
        >"$out/throughput.log" 2>&1
fi
pack
left=$((deadline - SECONDS))
pids=()
for w in $(seq 1 "$workers"); do
    python3 scripts/gpu_suite.py run --batch "$@" --data-root data --results-dir "$records" \
        --runs-dir /tmp/runs --claim-dir "$claims" --deadline-s "$left" >"$out/worker$w.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
kill "$packer" 2>/dev/null
pack
echo "records: $(find "$records" -name '*.json' | wc -l), ${SECONDS} s"
