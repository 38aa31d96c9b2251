#!/usr/bin/env bash
# libFuzzer over RoboSim's input paths (docs/fuzzing.md): builds the targets in Fuzz/ with
# `-sanitize=fuzzer,address` (scratch folder .build-fuzz, never the default .build) and runs each for
# SECONDS_PER_TARGET seconds, then prints a summary table. Not part of CI: too slow.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 120
#   FUZZ_TARGETS="reward mcap" scripts/fuzz.sh 60     a subset
#   FUZZ_NO_BUILD=1 scripts/fuzz.sh                   reuse the last build
#
# Seeds come from Fuzz/corpus/<target>/ (committed, small); the corpus that grows lives in
# .build-fuzz/corpus/<target>/. A crash, a hang (-timeout=5 s per input), an out-of-memory
# (-rss_limit_mb=2048) or a sanitizer report is saved to Fuzz/findings/<target>/ (ignored by git)
# and the target goes on with the time it has left (at most 5 findings a target). Every finding is
# fixed in the code and kept as a regression test in the Swift test suite. Exit status 1 when any
# target found something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${1:-120}
targets=(${FUZZ_TARGETS:-reward scene requests mcap checkpoint train-job parquet deploy-job})
scratch=.build-fuzz
max_findings=5

# Largest input per target, in bytes: above each format's realistic seeds, below what makes runs slow.
max_len() {
    case $1 in
        reward) echo 4200 ;;          # RewardExpression.Limits.sourceBytes is 4096
        parquet) echo 16384 ;;
        mcap | checkpoint) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

if [[ -z "${FUZZ_NO_BUILD:-}" ]]; then
    echo "fuzz: building ${targets[*]} (debug, -sanitize=fuzzer,address, $scratch)" >&2
    for t in "${targets[@]}"; do
        swift build --package-path Fuzz --scratch-path "$scratch" -c debug -Xswiftc -sanitize=fuzzer,address --product "fuzz-$t" 2>&1 \
            | grep -vE "^\[[0-9]+/[0-9]+\] |Cannot export local symbol|^warning: 'swift-distributed-tracing'|CMakeLists.txt$" >&2 || true
        [[ -x "$scratch/debug/fuzz-$t" ]] || { echo "fuzz: fuzz-$t did not build" >&2; exit 2; }
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:symbolize=1}
symbolizer=$(dirname "$(readlink -f "$(command -v swift)")")/llvm-symbolizer
[[ -x "$symbolizer" ]] && export ASAN_SYMBOLIZER_PATH="$symbolizer"

summary=()
failed=0
for t in "${targets[@]}"; do
    binary="$scratch/debug/fuzz-$t"
    corpus="$scratch/corpus/$t"
    findings="Fuzz/findings/$t"
    log="$scratch/logs/$t.log"
    mkdir -p "$corpus" "$findings" "$(dirname "$log")"
    : >"$log"
    before=$(find "$findings" -type f | wc -l)
    start=$(date +%s)
    runs=0 execs=0 cov=0 ft=0
    while :; do
        left=$((seconds - ($(date +%s) - start)))
        ((left > 0)) || break
        runs=$((runs + 1))
        echo "fuzz: $t run $runs, ${left}s left" >&2
        set +e
        "$binary" -max_total_time="$left" -max_len="$(max_len "$t")" -rss_limit_mb=2048 -timeout=5 -print_final_stats=1 \
            -artifact_prefix="$findings/" "$corpus" "Fuzz/corpus/$t" >>"$log" 2>&1
        status=$?
        set -e
        # The targets' scratch folders (FuzzSupport.ScratchFile) of processes that have ended.
        for d in /dev/shm/robosim-fuzz-* "${TMPDIR:-/tmp}"/robosim-fuzz-*; do
            [[ -d "$d" ]] || continue
            pid=${d##*/robosim-fuzz-}
            kill -0 "${pid%%-*}" 2>/dev/null || rm -rf "$d"
        done
        e=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
        execs=$((execs + ${e:-0}))
        # Each run's final stats line is only printed when it ends cleanly; count crashed runs from their last status line.
        if ((status != 0)); then
            last=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
            execs=$((execs + ${last:-0}))
        fi
        c=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
        [[ -n "$c" ]] && { cov=$(awk '{print $2}' <<<"$c"); ft=$(awk '{print $4}' <<<"$c"); }
        ((status == 0)) && break
        now=$(find "$findings" -type f | wc -l)
        ((now - before >= max_findings)) && break
        ((now > before)) || { echo "fuzz: $t exited $status without a finding; see $log" >&2; break; }
    done
    elapsed=$(($(date +%s) - start))
    found=$(($(find "$findings" -type f | wc -l) - before))
    ((found > 0)) && failed=1
    summary+=("$(printf '%-12s %12s %8s %10s %8s %8s %9s' "$t" "$execs" "$elapsed" "$((execs / (elapsed > 0 ? elapsed : 1)))" "$cov" "$ft" "$found")")
done

printf '\n%-12s %12s %8s %10s %8s %8s %9s\n' target execs seconds execs/s cov ft findings
printf '%s\n' "${summary[@]}"
((failed == 0)) || echo "fuzz: findings in Fuzz/findings/ (logs in $scratch/logs/)" >&2
exit $failed
