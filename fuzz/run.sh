#!/bin/sh
# Runs each libFuzzer driver for a while and prints a summary; `make fuzz`
# calls it after building. Usage:
#     fuzz/run.sh BUILD_DIR SECONDS TARGET...
# Each target starts from a scratch copy of fuzz/corpus/TARGET plus
# fuzz/regressions/TARGET (so every past finding is replayed first), in
# BUILD_DIR/scratch/TARGET; its log goes to BUILD_DIR/logs/TARGET.log and
# a crash, leak or timeout leaves its reproducer in BUILD_DIR/findings/TARGET/.
# Exits 1 when any target found something.
set -eu
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)

# Longest input per target: XML-RPC bodies and HTTP heads that exercise the
# grammars fit in 4 KiB; routes.conf texts are read line by line and every
# upstream may cost a name lookup, so they stay shorter.
max_len() {
    case $1 in
    fuzz_routes_conf) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

summary=""
failed=0
for t in "$@"; do
    bin="$build/fuzz/$t"
    scratch="$build/scratch/$t"
    findings="$build/findings/$t"
    log="$build/logs/$t.log"
    rm -rf "$scratch"
    mkdir -p "$scratch" "$findings" "$build/logs"
    cp "$src/corpus/$t/"* "$scratch/"
    if [ -d "$src/regressions/$t" ]; then
        cp "$src/regressions/$t/"* "$scratch/" 2>/dev/null || true
    fi
    echo "fuzz: $t for ${seconds}s (log: $log)"
    rc=0
    "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=25 \
        -print_final_stats=1 -artifact_prefix="$findings/" "$scratch" >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1 | sed 's/cov: \([0-9]*\) ft: \([0-9]*\)/\1 edges, \2 features/')
    crashes=$(find "$findings" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        grep -m 1 -E 'invariant failed|ERROR: |runtime error' "$log" || true
    fi
    summary="$summary$(printf '%-22s %10s runs %8s/s  %-28s %s finding(s)' \
        "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$crashes")
"
done
echo
printf '%-22s %15s %10s  %-28s %s\n' target runs exec coverage findings
printf '%s' "$summary"
[ "$failed" -eq 0 ] || echo "fuzz: findings in $build/findings/ (see fuzz/README.md)"
exit "$failed"
