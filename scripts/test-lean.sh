#!/usr/bin/env bash
# The attend the README's main job builds: without the Server, PostgreSQL and MPI traits (`--disable-default-traits`),
# so that a fresh clone builds it in about two minutes instead of seven. Checks that this build compiles, answers a
# question from manual pages the way the main job does (index on first use, then ask with sources), leaves out
# `attend serve`, and refuses a postgres:// index with a message that says how to get one that takes it.
# Usage: scripts/test-lean.sh [SCRATCH_PATH, default .build-lean]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="${1:-.build-lean}"
swift build --disable-default-traits --product attend --scratch-path "$scratch"
attend="$scratch/debug/attend"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-lean: $*" >&2; exit 1; }

manual=/usr/share/doc/postgresql-doc-15/html
mkdir "$work/pages"
cp "$manual/sql-createindex.html" "$manual/sql-dropindex.html" "$manual/sql-truncate.html" "$work/pages/"
out=$("$attend" ask "$work/index.sqlite" --documents "$work/pages" --max-tokens 8 "How do I build an index without blocking writes to the table?" 2>"$work/err") \
    || { cat "$work/err" >&2; fail "ask failed"; }
grep -q "3 added" "$work/err" || { cat "$work/err" >&2; fail "the first ask did not index the 3 pages"; }
echo "$out" | grep -q "^\[1\] .*sql-createindex.html" || { echo "$out" >&2; fail "the first source is not CREATE INDEX"; }
# A second question reuses the index: the pages are unchanged.
"$attend" ask "$work/index.sqlite" --documents "$work/pages" --max-tokens 4 "How do I empty a table quickly?" >"$work/out2" 2>"$work/err2" \
    || { cat "$work/err2" >&2; fail "second ask failed"; }
if grep -qE "[1-9][0-9]* (added|updated)" "$work/err2"; then cat "$work/err2" >&2; fail "the second ask re-embedded unchanged pages"; fi
grep -q "^\[1\] .*sql-truncate.html" "$work/out2" || { cat "$work/out2" >&2; fail "the first source for emptying a table is not TRUNCATE"; }

# No server in this build, and postgres:// is refused by name before anything runs.
if "$attend" --help | grep -qE "^  serve "; then fail "attend serve is listed in a build without the Server trait"; fi
if "$attend" serve >/dev/null 2>&1; then fail "attend serve ran in a build without the Server trait"; fi
set +e
msg=$("$attend" search "postgres://attend@127.0.0.1:1/attend" "vacuum" 2>&1)
code=$?
set -e
[ "$code" -ne 0 ] || fail "a postgres:// index was accepted"
echo "$msg" | grep -q "built without PostgreSQL support" || { echo "$msg" >&2; fail "the refusal does not say why"; }
set +e
msg=$("$attend" gpt train README.md -o "$work/gpt.safetensors" --iterations 1 --distributed 2>&1)
code=$?
set -e
[ "$code" -ne 0 ] || fail "--distributed was accepted without the MPI trait"
echo "$msg" | grep -q "built without the MPI trait" || { echo "$msg" >&2; fail "the --distributed refusal does not say why"; }
set +e
msg=$(OMPI_COMM_WORLD_SIZE=2 "$attend" gpt train README.md -o "$work/gpt.safetensors" --iterations 1 2>&1)
code=$?
set -e
[ "$code" -ne 0 ] || fail "a build without MPI trained under an mpirun environment (each rank alone, all writing one file)"
echo "$msg" | grep -q "started by mpirun" || { echo "$msg" >&2; fail "the mpirun refusal does not say why"; }
echo "test-lean: the lean attend builds, answers with sources, reuses its index, has no serve, refuses postgres://, --distributed and mpirun by name"
