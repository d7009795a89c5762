#!/usr/bin/env bash
# Data-parallel training on MPI, for real: `mpirun -np 2` runs each trainer as two processes (Open MPI over shared
# memory, and once over TCP, the transport two machines use), each on half of every batch. Checks that the ranks end
# with bit-identical parameters and the single process's loss curve (the same global batches; only the order of the
# sums differs): GPT, BERT masked-LM and fine-tuning, the Fashion-MNIST classifier and CLIP; that rank 0 alone wrote the checkpoint;
# that a resumed run continues under mpirun; that word2vec's ranks end with the same vectors; that ranks started with
# different settings refuse; and that a killed rank ends the job.
# Usage: scripts/test-mpi.sh [ATTEND, default .build/debug/attend]
set -euo pipefail
cd "$(dirname "$0")/.."
attend="${1:-.build/debug/attend}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-mpi: $*" >&2; exit 1; }
# Open MPI refuses root unless told; CI runs as root. --oversubscribe: do not count cores against ranks.
launcher=(mpirun --oversubscribe -x ATTEND_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && launcher+=(--allow-run-as-root)
mpirun=("${launcher[@]}" -np 2)

# Runs `attend COMMAND...` as one process on one thread and under mpirun -np 2, each writing its per-step losses;
# checks that the ranks report bit-identical parameters and that the COUNT losses agree to TOLERANCE (relative).
# Outputs: $work/NAME-single.*, $work/NAME-mpi.*, $work/NAME.out (rank 0's output under mpirun).
same_run() {   # NAME COUNT TOLERANCE COMMAND...
    local name=$1 count=$2 tolerance=$3; shift 3
    local o=-o; [ "$1" = mnist ] && o=--save
    ATTEND_NUM_THREADS=1 "$attend" "$@" "$o" "$work/$name-single.safetensors" --loss-log "$work/$name-single.loss" > "$work/$name-single.out" 2>&1 \
        || { cat "$work/$name-single.out" >&2; fail "attend $1 (one process) failed"; }
    "${mpirun[@]}" "$attend" "$@" "$o" "$work/$name-mpi.safetensors" --loss-log "$work/$name-mpi.loss" > "$work/$name.out" 2> "$work/$name.err" \
        || { cat "$work/$name.out" "$work/$name.err" >&2; fail "mpirun -np 2 attend $1 failed"; }
    grep -q "data-parallel over 2 ranks: parameters bit-identical on every rank: yes" "$work/$name.out" \
        || { cat "$work/$name.out" >&2; fail "the $name ranks did not report identical parameters"; }
    python3 - "$work/$name-single.loss" "$work/$name-mpi.loss" "$name" "$count" "$tolerance" <<'PY'
import sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
name, count, tolerance = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
assert len(a) == len(b) == count, (len(a), len(b))
worst = max(abs(x - y) / max(abs(x), 1e-6) for x, y in zip(a, b))
assert worst < tolerance, f"{name}: losses differ by {worst:.2e} (relative) between 1 process and 2 ranks"
assert a[-1] < a[0], f"{name}: the loss did not fall"
print(f"test-mpi: {count} {name} losses of 1 process and 2 ranks agree to {worst:.1e} (relative); {a[0]:.3f} -> {a[-1]:.3f}")
PY
}

options=(README.md --layers 2 --heads 2 --width 32 --context 16 --batch-size 8 --warmup 4 --eval-interval 12 --eval-iters 2 --seed 7 --iterations)
same_run gpt 24 2e-3 gpt train "${options[@]}" 24
[ "$(grep -c '^iter 24:' "$work/gpt.out")" -eq 1 ] || { cat "$work/gpt.out" >&2; fail "rank 0 alone should print (one 'iter 24' line)"; }
[ -s "$work/gpt-mpi.safetensors" ] || fail "rank 0 wrote no checkpoint"
# The same run over TCP (loopback here; between machines, the same transport): the same parameters as over shared memory.
"${mpirun[@]}" --mca btl tcp,self "$attend" gpt train "${options[@]}" 24 -o "$work/tcp.safetensors" > "$work/tcp.out" 2> "$work/tcp.err" \
    || { cat "$work/tcp.out" "$work/tcp.err" >&2; fail "mpirun over TCP failed"; }
checksum() { sed -n 's/.*bit-identical on every rank: yes (checksum \([0-9a-f]*\)).*/\1/p' "$1"; }
[ -n "$(checksum "$work/tcp.out")" ] && [ "$(checksum "$work/tcp.out")" = "$(checksum "$work/gpt.out")" ] \
    || { cat "$work/tcp.out" "$work/gpt.out" >&2; fail "training over TCP ended with other parameters than over shared memory"; }

# Resume: 24 more iterations from the checkpoint, under mpirun again.
"${mpirun[@]}" "$attend" gpt train "${options[@]}" 48 -o "$work/gpt-mpi.safetensors" --resume > "$work/resume.out" 2>&1 \
    || { cat "$work/resume.out" >&2; fail "resuming under mpirun failed"; }
grep -q "resumed from .* at iteration 24" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "did not resume at iteration 24"; }
grep -q "^iter 48:" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "the resumed run did not reach iteration 48"; }
grep -q "parameters bit-identical on every rank: yes" "$work/resume.out" || { cat "$work/resume.out" >&2; fail "resumed ranks differ"; }

# BERT masked-LM pretraining: each rank's loss is the mean over its own masked tokens, whose number differs between
# ranks, so the gradients are averaged weighted by that number; a plain mean would drift from the single process.
bert=(README.md --vocab-size 400 --layers 2 --heads 2 --width 32 --ffn 64 --max-length 32 --dropout 0 --batch-size 8
      --steps 16 --log-every 8 --seed 3)
same_run bert 16 1e-4 bert pretrain "${bert[@]}"

# Fine-tuning that BERT as a classifier (which lines of the README are list items), 101 training rows in batches of 10:
# the last batch of each epoch is one row, which one rank has no share of (it computes one and weighs it 0). Per-step
# losses as above.
# Both classes in both files (the first lines of the README are nearly all prose): 50 of each in training, 25 in test.
python3 - README.md "$work/lines-train.tsv" "$work/lines-test.tsv" <<'PY'
import sys
lines = [l.strip() for l in open(sys.argv[1]) if len(l.strip()) > 20 and "\t" not in l]
items = ["item\t" + l[2:] for l in lines if l.startswith("- ")]
texts = ["text\t" + l for l in lines if not l.startswith("- ")]
assert len(items) >= 74 and len(texts) >= 76, (len(items), len(texts))
train = [r for pair in zip(items[:50], texts[:50]) for r in pair] + [texts[50]]   # 101 rows: the last batch has one
test = items[50:74] + texts[51:76]
open(sys.argv[2], "w").write("\n".join(train) + "\n")
open(sys.argv[3], "w").write("\n".join(test) + "\n")
PY
finetune=(bert finetune "$work/bert-mpi.safetensors" --train "$work/lines-train.tsv" --test "$work/lines-test.tsv" --epochs 2 --batch-size 10 --seed 2)
same_run finetune 22 1e-4 "${finetune[@]}"

# The Fashion-MNIST classifier: 1,003 pictures in batches of 100, so each epoch ends on a batch of three, split one and
# two: the ranks' gradients must count by rows (a plain mean fails here). Per-step losses as above.
same_run mnist 22 1e-4 mnist --model mlp --train-limit 1003 --epochs 2 --batch-size 100 --seed 4

# CLIP with a from-scratch text tower: each rank embeds half of each batch and gathers the rest; the contrastive loss
# over the whole batch must follow the single process's.
clip=(clip train --data digits --limit 256 --text-tower transformer --steps 12 --batch-size 64 --seed 5 --cache none --image-size 32)
same_run clip 12 1e-4 "${clip[@]}"

# word2vec across ranks: each trains its own copy on its slices, the changes are summed 4 times an epoch; every rank
# must end with the same vectors, and the topics must come out.
python3 - "$work/topics.txt" <<'PY'
import random, sys
random.seed(3)
topics = [["cat", "dog", "horse", "cow", "sheep", "goat"], ["red", "blue", "green", "yellow", "purple", "orange"]]
with open(sys.argv[1], "w") as f:
    for _ in range(4000):
        t = random.choice(topics)
        f.write(" ".join(random.choice(t) for _ in range(8)) + "\n")
PY
"${mpirun[@]}" "$attend" word2vec train "$work/topics.txt" -o "$work/topics.vec" --format text --dimension 16 --min-count 1 --sample 0 \
    --epochs 2 --threads 1 --rounds 4 > "$work/w2v.out" 2> "$work/w2v.err" || { cat "$work/w2v.out" "$work/w2v.err" >&2; fail "mpirun attend word2vec train failed"; }
grep -q "vectors bit-identical on every rank: yes" "$work/w2v.out" || { cat "$work/w2v.out" >&2; fail "the word2vec ranks differ"; }
grep -q "trained 2 epochs on 64000 words" "$work/w2v.out" || { cat "$work/w2v.out" >&2; fail "the ranks did not read the corpus twice between them"; }
within=$("$attend" word2vec similar "$work/topics.vec" cat -k 5 | tail -5 | grep -cE "dog|horse|cow|sheep|goat" || true)
[ "$within" -eq 5 ] || { "$attend" word2vec similar "$work/topics.vec" cat -k 5 >&2; fail "word2vec across ranks did not learn the topics"; }

# Ranks started with different settings refuse together, naming the values (MPMD: one command line per rank).
small=(README.md --layers 2 --heads 2 --width 32 --context 16 --batch-size 8 --iterations 4 -o "$work/differ.safetensors")
# Each rank's output goes to its own file: the two ranks' error lines would interleave on one stream.
if timeout 120 "${launcher[@]}" --output-filename "$work/differ" -np 1 "$attend" gpt train "${small[@]}" --seed 1 : -np 1 "$attend" gpt train "${small[@]}" --seed 2 \
    > "$work/differ.out" 2>&1; then cat "$work/differ.out" >&2; fail "ranks with different seeds trained"; fi
size=$(wc -c < README.md)
for rank in 0 1; do
    grep -q "the 2 ranks were started differently (settings hash [0-9a-f]* and [0-9a-f]*; data $size and $size bytes)" "$work"/differ/*/rank.$rank/stderr \
        || { cat "$work/differ.out" "$work"/differ/*/rank.*/stderr >&2; fail "rank $rank gave no clear error for ranks started with different settings"; }
done

# A rank killed mid-training: mpirun ends the job; where the launcher does not, the survivor's watchdog does.
long=(README.md --layers 2 --heads 2 --width 32 --context 16 --batch-size 8 --iterations 100000 --eval-interval 100000 -o "$work/dies.safetensors")
killer="\"$attend\" gpt train ${long[*]} & pid=\$!; sleep 3; kill -9 \$pid; wait \$pid; exit 137"
started=$(date +%s)
if timeout 60 "${launcher[@]}" -np 1 "$attend" gpt train "${long[@]}" : -np 1 sh -c "$killer" > "$work/dies.out" 2>&1; then
    fail "a job with a killed rank exited 0"; fi
grep -q "exited with non-zero status" "$work/dies.out" || { cat "$work/dies.out" >&2; fail "mpirun did not report the dead rank"; }
timeout 60 "${launcher[@]}" --mca orte_abort_on_non_zero_status 0 -x ATTEND_MPI_TIMEOUT=3 --output-filename "$work/stall" \
    -np 1 "$attend" gpt train "${long[@]}" : -np 1 sh -c "$killer" > "$work/stall.out" 2>&1 || true
grep -q "attend (rank 0 of 2): MPI_Allreduce waited [0-9]* s for the other ranks (ATTEND_MPI_TIMEOUT=3): one of them died or hangs" "$work"/stall/*/rank.0/stderr \
    || { cat "$work/stall.out" "$work"/stall/*/rank.0/stderr >&2; fail "the surviving rank did not time out with a message"; }
echo "test-mpi: a dead rank ends the job in $(( $(date +%s) - started )) s (mpirun's abort, then the watchdog at 3 s)"
echo "test-mpi: gpt, bert (pretrain and finetune), mnist, clip and word2vec train on 2 ranks with bit-identical parameters and the single process's loss curve; one writer; resume; refusals"
