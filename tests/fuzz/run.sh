#!/usr/bin/env bash
# run.sh SECONDS TARGET...: run each libFuzzer target built by `make fuzz` for
# SECONDS, from its seed corpus (tests/fuzz/corpus/TARGET, never written) into
# build/fuzz/corpus/TARGET, with its dictionary if it has one.  Prints one
# line per target (runs, coverage, result); the full output is in
# build/fuzz/log/TARGET.log.  Fails if any target found a crash, a leak, a
# timeout (10 s for one input) or a failed invariant: the input that did it
# is in build/fuzz/artifacts/.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
secs=$1
shift
b="$top/build/fuzz"
mkdir -p "$b/log" "$b/artifacts"
rc=0
for t in "$@"; do
	seed="$top/tests/fuzz/corpus/$t"
	work="$b/corpus/$t"
	dict="$top/tests/fuzz/$t.dict"
	log="$b/log/$t.log"
	mkdir -p "$work" "$seed"
	args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
	      -artifact_prefix="$b/artifacts/$t-")
	[ -f "$dict" ] && args+=(-dict="$dict")
	start=$(date +%s)
	"$b/fuzz_$t" "${args[@]}" "$work" "$seed" >"$log" 2>&1
	r=$?
	end=$(date +%s)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n1)
	if [ "$r" -eq 0 ]; then
		res=ok
	else
		res="FAILED (exit $r)"
		rc=1
	fi
	printf 'fuzz %-8s %4ss %10s runs  %-20s corpus %s  %s\n' "$t" "$((end - start))" \
	    "${runs:-?}" "${cov:-cov: ?}" "$(find "$work" "$seed" -type f | wc -l)" "$res"
	if [ "$r" -ne 0 ]; then
		grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$log" | head -n 20 | sed 's/^/    /'
	fi
done
exit $rc
