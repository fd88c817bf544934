#!/bin/bash
# unit.t: run every unit test binary in $MOAT_UNIT (default: build/tests of
# this tree) and report one TAP line for each.  A binary passes when it
# exits 0, prints a plan, runs as many tests as planned and none "not ok".
# A failing binary's output is shown as diagnostics ("# ...", on stderr).

here=$(cd "$(dirname "$0")" && pwd)
dir=${MOAT_UNIT:-$here/../../build/tests}
limit=${MOAT_UNIT_TIMEOUT:-60}

bins=()
if [ -d "$dir" ]; then
	for f in "$dir"/*; do
		case $(basename "$f") in *.*) continue ;; esac
		[ -f "$f" ] && [ -x "$f" ] && bins+=("$f")
	done
fi
if [ ${#bins[@]} -eq 0 ]; then
	echo "1..1"
	echo "not ok 1 - no unit test binaries in $dir (run make)"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moat-unit.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

echo "1..${#bins[@]}"
n=0
for b in "${bins[@]}"; do
	n=$((n + 1))
	name=$(basename "$b")
	out=$tmp/$name.out
	if command -v timeout >/dev/null; then
		(cd "$tmp" && timeout "$limit" "$b") >"$out" 2>&1
	else
		(cd "$tmp" && "$b") >"$out" 2>&1
	fi
	rc=$?
	plan=$(grep -m1 -E '^1\.\.[0-9]+' "$out")
	planned=${plan#1..}
	planned=${planned%% *}
	run=$(grep -cE '^(not )?ok [0-9]+' "$out")
	bad=$(grep -cE '^not ok [0-9]+' "$out")
	why=
	if [ $rc -ne 0 ]; then
		why="exit status $rc"
		[ $rc -eq 124 ] && why="timed out after ${limit}s"
	elif [ -z "$plan" ]; then
		why="no plan"
	elif [ "$bad" -gt 0 ]; then
		why="$bad failed"
	elif [ "$planned" != "$run" ]; then
		why="planned $planned, ran $run"
	fi
	if [ -z "$why" ]; then
		case $plan in
		"1..0"*)
			reason=${plan#1..0}
			reason=${reason#*SKIP}
			echo "ok $n - $name # SKIP${reason:- no tests}"
			;;
		*) echo "ok $n - $name ($run tests)" ;;
		esac
	else
		echo "not ok $n - $name: $why"
		sed 's/^/# /' "$out" >&2
	fi
done
exit 0
