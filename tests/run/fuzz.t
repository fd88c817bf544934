#!/bin/bash
# fuzz.t: build the libFuzzer targets (make fuzz) and run each for a short
# while on a copy of its seed corpus (fuzz/corpus/NAME/), all at once.
# One TAP line per target.  Skipped without clang or libFuzzer.
#
#   MOAT_FUZZ_TIME   seconds per target (default 8)

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${MOAT_FUZZ_TIME:-8}

if ! command -v clang >/dev/null; then
	echo "1..0 # SKIP no clang"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/moat-fuzz.XXXXXX") || exit 1
keep=
trap '[ -n "$keep" ] || rm -rf "$tmp"' EXIT

# is libFuzzer there?
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
	>"$tmp/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" \
	>/dev/null 2>&1; then
	echo "1..0 # SKIP no libFuzzer (clang -fsanitize=fuzzer fails)"
	exit 0
fi

# a clean sub-make, not one that inherits `make check`'s jobserver and
# variables
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	make -C "$root" -j"$(nproc 2>/dev/null || echo 2)" fuzz \
	>"$tmp/make.log" 2>&1; then
	echo "1..1"
	echo "not ok 1 - make fuzz"
	sed 's/^/# /' "$tmp/make.log" >&2
	exit 0
fi

names=()
for src in "$root"/fuzz/*.c; do
	[ -e "$src" ] || continue
	n=$(basename "$src" .c)
	[ -x "$root/fuzz/bin/$n" ] && names+=("$n")
done
if [ ${#names[@]} -eq 0 ]; then
	echo "1..0 # SKIP no fuzz targets"
	exit 0
fi
echo "1..${#names[@]}"

pids=()
for n in "${names[@]}"; do
	mkdir -p "$tmp/$n/corpus"
	if [ -d "$root/fuzz/corpus/$n" ]; then
		cp -R "$root/fuzz/corpus/$n/." "$tmp/$n/corpus/"
	fi
	(
		cd "$tmp/$n" &&
			timeout $((secs + 60)) "$root/fuzz/bin/$n" \
				-max_total_time="$secs" -rss_limit_mb=1024 \
				-timeout=10 -print_final_stats=1 \
				-artifact_prefix="$tmp/$n/" corpus >log 2>&1
		echo $? >rc
	) &
	pids+=($!)
done
wait "${pids[@]}"

i=0
for n in "${names[@]}"; do
	i=$((i + 1))
	rc=$(cat "$tmp/$n/rc" 2>/dev/null || echo '?')
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$n/log")
	if [ "$rc" = 0 ]; then
		echo "ok $i - fuzz $n (${runs:-?} runs in ${secs}s)"
	else
		keep=1
		echo "not ok $i - fuzz $n: exit status $rc"
		grep -E -A30 '^==[0-9]+==|ERROR|runtime error|deadly' \
			"$tmp/$n/log" | head -60 | sed 's/^/# /' >&2
		for a in "$tmp/$n"/crash-* "$tmp/$n"/leak-* "$tmp/$n"/timeout-* \
			"$tmp/$n"/oom-*; do
			[ -e "$a" ] || continue
			echo "# reproducer: $a" >&2
			od -c "$a" | head -8 | sed 's/^/#   /' >&2
		done
		echo "# kept in $tmp" >&2
	fi
done
exit 0
