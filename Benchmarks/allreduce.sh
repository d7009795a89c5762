#!/usr/bin/env bash
# All-reduce cost from 1 KB to 256 MB under `mpirun -np RANKS` (one machine, Open MPI's shared-memory transport):
# Attend's gradient averaging (DataParallel: pack into a bucket, MPI_Allreduce, scale and unpack), the bare
# MPI_Allreduce called from Swift, and Open MPI's own figure from an OSU-style C program, in one run.
# TRANSPORT tcp forces Open MPI's TCP path between the ranks (over loopback here), what two machines would use.
# Usage: Benchmarks/allreduce.sh [RANKS, default 2] [REPEATS, default 20] [shm|tcp]
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}; repeats=${2:-20}; transport=${3:-shm}
scripts/setup.sh
swift build -c release --product attend >/dev/null
mkdir -p .cache/bench
mpicc -O2 Benchmarks/allreduce_osu.c -o .cache/bench/allreduce_osu
mpirun=(mpirun --oversubscribe -np "$ranks" -x ATTEND_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
[ "$transport" = tcp ] && mpirun+=(--mca btl tcp,self)
"${mpirun[@]}" .cache/bench/allreduce_osu "$repeats" > .cache/bench/allreduce-osu.txt
"${mpirun[@]}" .build/release/attend bench allreduce --repeats "$repeats" > .cache/bench/allreduce-attend.txt
python3 - .cache/bench/allreduce-osu.txt .cache/bench/allreduce-attend.txt "$ranks" "$transport" <<'PY'
import sys
osu = {int(b): float(t) for b, t in (l.split() for l in open(sys.argv[1]))}
rows = [l.split() for l in open(sys.argv[2]).read().splitlines()[1:]]
n = int(sys.argv[3])
print(f"{n} ranks, one machine, {sys.argv[4]} transport; medians, microseconds (slowest rank per repetition); bus GB/s = 2 (n-1)/n bytes / time")
print("      bytes | Open MPI (C) | Attend bare | Attend averaging | averaging / C | bus GB/s (C)")
for bytes_, bare, averaged, *_ in rows:
    b = int(bytes_); c = osu[b]
    print(f"{b:11d} | {c:12.1f} | {float(bare):11.1f} | {float(averaged):16.1f} | {c / float(averaged):12.2f}x | {2 * (n - 1) / n * b / c / 1e3:8.2f}")
PY
