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
# testdata/fuzz/<Target>/: fix the bug and commit the file as a seed.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime="${1:-3s}"
pattern="${2:-.}"
status=0
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	[[ "$name" =~ $pattern ]] || continue
	echo "fuzz.sh: $pkg $name ($fuzztime)"
	if ! go test -timeout 0 -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "${FUZZ_MINIMIZE:-5s}" "$pkg" 2>&1 | tail -n 3; then
		status=1
	fi
done < <(grep -rHoE --include='*_test.go' '^func (Fuzz[A-Za-z0-9_]+)' . | sed 's#^\./##; s#:func #:#' | sort)
exit "$status"
