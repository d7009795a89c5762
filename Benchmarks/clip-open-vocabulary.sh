#!/usr/bin/env bash
# The shipped CLIP model naming everyday photos out of an open vocabulary instead of choosing among a set's few
# things: every noun of WordNet's concrete kinds (animals, artifacts, body, food, places, objects, people, plants,
# substances) that SemCor's sense counts (WordNet's cntlist.rev) tag at least MIN times, about 1,400 words, as
# "a photo of a {}"; a photo counts when the top word is one of the names its TSV accepts (whole words).
# Usage: Benchmarks/clip-open-vocabulary.sh [MIN] [TSV...]
#   (defaults: 5, Benchmarks/data/everyday-photos.tsv Benchmarks/data/more-everyday-photos.tsv)
set -euo pipefail
cd "$(dirname "$0")/.."
min=${1:-5}
tsvs=("${@:2}")
[ ${#tsvs[@]} -gt 0 ] || tsvs=(Benchmarks/data/everyday-photos.tsv Benchmarks/data/more-everyday-photos.tsv)
scripts/setup.sh >/dev/null
scripts/fetch-assets.sh efficientnet-lite0 all-MiniLM-L6-v2 >/dev/null
swift build -c release --product attend >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$min" >"$work/words.txt" <<'PY'
import collections, sys
concrete = {"05", "06", "08", "13", "15", "17", "18", "20", "27"}  # WordNet's lexicographer files of things one sees
counts = collections.Counter()
for line in open("/usr/share/wordnet/cntlist.rev"):
    key, _, n = line.split()
    lemma, rest = key.split("%")
    kind, lexfile = rest.split(":")[:2]
    if kind == "1" and lexfile in concrete:
        counts[lemma.replace("_", " ")] += int(n)
words = sorted(w for w, n in counts.items() if n >= int(sys.argv[1]) and w.isascii() and "," not in w)
print(",".join(words))
PY
echo "$(tr ',' '\n' <"$work/words.txt" | wc -l) words tagged at least $min times in SemCor"
for tsv in "${tsvs[@]}"; do
  Benchmarks/everyday-tsv.sh "$tsv" >"$work/photos.tsv"
  cut -f1 "$work/photos.tsv" | xargs .build/release/attend clip classify --json --top 3 --labels "$(cat "$work/words.txt")" >"$work/clip.jsonl" 2>/dev/null
  python3 - "$tsv" "$work/photos.tsv" "$work/clip.jsonl" <<'PY'
import json, sys
name, tsv, clip = sys.argv[1:4]
rows = [line.rstrip("\n").split("\t") for line in open(tsv) if line.strip()]
right = 0
for (path, names), result in zip(rows, map(json.loads, open(clip))):
    top = [label["label"] for label in result["labels"]]
    hit = top[0].lower() in [n.lower() for n in names.split("|")]
    right += hit
    print(f"  [{names.split('|')[0]}] {', '.join(top)}{'  (right)' if hit else ''}")
print(f"{name}: {right} of {len(rows)} named by the top word")
PY
done
