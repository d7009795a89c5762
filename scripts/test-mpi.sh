#!/usr/bin/env bash
# Data-parallel training on MPI, for real: `mpirun -np 2` runs `attend gpt train` as two processes (Open MPI over
# shared memory), each on half of every batch. Checks that the ranks end with bit-identical parameters, that the
# loss curve is the single process's within 2e-3 (the same global batches; only the order of the sums differs),
# that rank 0 alone wrote the checkpoint, and that a resumed run continues under mpirun.
# Usage: scripts/test-mpi.sh [ATTEND, default .build/debug/attend]
set -euo pipefail
cd "$(dirname "$0")/.."
attend="${1:-.build/debug/attend}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-mpi: $*" >&2; exit 1; }
# Open MPI refuses root unless told; CI runs as root. --oversubscribe: do not count cores against ranks.
mpirun=(mpirun --oversubscribe -np 2 -x ATTEND_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)

options=(README.md --layers 2 --heads 2 --width 32 --context 16 --batch-size 8 --warmup 4 --eval-interval 12 --eval-iters 2 --seed 7 --iterations)
ATTEND_NUM_THREADS=1 "$attend" gpt train "${options[@]}" 24 -o "$work/single.safetensors" --loss-log "$work/single.loss" > "$work/single.out"
"${mpirun[@]}" "$attend" gpt train "${options[@]}" 24 -o "$work/mpi.safetensors" --loss-log "$work/mpi.loss" > "$work/mpi.out" 2> "$work/mpi.err" \
    || { cat "$work/mpi.out" "$work/mpi.err" >&2; fail "mpirun -np 2 attend gpt train failed"; }
grep -q "data-parallel over 2 ranks: parameters bit-identical on every rank: yes" "$work/mpi.out" \
    || { cat "$work/mpi.out" >&2; fail "the ranks did not report identical parameters"; }
[ "$(grep -c '^iter 24:' "$work/mpi.out")" -eq 1 ] || { cat "$work/mpi.out" >&2; fail "rank 0 alone should print (one 'iter 24' line)"; }
[ -s "$work/mpi.safetensors" ] || fail "rank 0 wrote no checkpoint"
python3 - "$work/single.loss" "$work/mpi.loss" <<'PY'
import sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
assert len(a) == len(b) == 24, (len(a), len(b))
worst = max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(a, b))
assert worst < 2e-3, f"loss curves differ by {worst:.2e} (relative) between 1 process and 2 ranks"
assert a[-1] < a[0], "the loss did not fall"
print(f"test-mpi: 24 losses of 1 process and 2 ranks agree to {worst:.1e} (relative); {a[0]:.3f} -> {a[-1]:.3f}")
PY
# Resume: 24 more iterations from the checkpoint, under mpirun again.
"${mpirun[@]}" "$attend" gpt train "${options[@]}" 48 -o "$work/mpi.safetensors" --resume > "$work/resume.out" 2>&1 \
    || { cat "$work/resume.out" >&2; fail "resuming under mpirun failed"; }
grep -q "resumed from .* at iteration 24" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "did not resume at iteration 24"; }
grep -q "^iter 48:" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "the resumed run did not reach iteration 48"; }
grep -q "parameters bit-identical on every rank: yes" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "resumed ranks differ"; }
echo "test-mpi: 2 ranks train with bit-identical parameters, the single process's loss curve, one writer, and resume"
