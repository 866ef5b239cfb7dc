#!/usr/bin/env bash
# Run every harness in turn, one process at a time, for SECONDS each.
#   fuzz/run_all.sh SECONDS WORKDIR [TARGET...]
# WORKDIR gets seeds/ (fuzz/make_seeds.py), corpus/TARGET (inputs libFuzzer kept),
# artifacts/ (crash-*, timeout-*, oom-* inputs) and TARGET.log (libFuzzer's output).
set -u
seconds=${1:?seconds per target}
work=${2:?work directory}
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(capture decode dns tls http quic analyze)
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python}
mkdir -p "$work/artifacts"
[ -d "$work/seeds" ] || "$python" "$here/make_seeds.py" "$work/seeds"
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/seeds/$t"
    start=$(date +%s)
    "$python" "$here/fuzz_$t.py" "$work/corpus/$t" "$work/seeds/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t-" >"$work/$t.log" 2>&1
    rc=$?
    end=$(date +%s)
    echo "$t: exit $rc after $((end - start)) s; $(grep -E '^#[0-9]+' "$work/$t.log" | tail -1)"
done
