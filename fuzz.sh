#!/usr/bin/env bash
# fuzz.sh — run every fuzz target of the module for a while.
#
#   ./fuzz.sh                 each target for 3 s (the smoke run test.sh does)
#   ./fuzz.sh 1000000x        each target for one million executions
#   ./fuzz.sh 2m FuzzSplit    only targets whose name matches the pattern
#
# New inputs are minimised for at most FUZZ_MINIMIZE (default 5s), not go's 60 s:
# large parsers keep finding new paths and would spend most of a long run there.
#
# A crasher fails the run and is written by go test under the package's
# testdata/fuzz/<Target>/: fix the bug and commit the file as a seed. A
# failure that writes no crasher (the fuzzing engine's own) is retried once,
# and its output is shown.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime="${1:-3s}"
pattern="${2:-.}"
status=0
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	[[ "$name" =~ $pattern ]] || continue
	echo "fuzz.sh: $pkg $name ($fuzztime)"
	corpus="$pkg/testdata/fuzz/$name"
	before="$(ls "$corpus" 2>/dev/null | wc -l || true)"
	for attempt in 1 2; do
		if out="$(go test -timeout 0 -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZ_MINIMIZE:-5s}" "$pkg" 2>&1)"; then
			tail -n 3 <<<"$out"
			break
		fi
		tail -n 40 <<<"$out"
		# A crasher is written under testdata/fuzz: that always fails the
		# run. A failure that wrote none (the fuzzing engine itself, e.g. a
		# worker that died) is run once more before it does.
		if [ "$attempt" -eq 2 ] || [ "$(ls "$corpus" 2>/dev/null | wc -l || true)" -ne "$before" ]; then
			status=1
			break
		fi
		echo "fuzz.sh: $pkg $name failed without a crasher; once more"
	done
done < <(grep -rHoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . | sed 's#^\./##; s#:func #:#' | sort)
exit "$status"
