#!/usr/bin/env python3
"""Zero-shot scores of one CLIP model (attend clip classify) on pictures it never trained on, one line per set:

  stamp kinds   Tux Paint's stamps (Debian's tuxpaint-stamps-default) in twelve of its folders, each among the twelve
                folders' general words ("a bird", "a vehicle", "food"): the folder is the truth.
  stamp names   every stamp of the folders with objects (not symbols, seasonal or cartoons) whose English name
                (its .txt's first line, articles dropped) is at most three words, among all those names: top-1, top-5.
  everyday      Benchmarks/data/everyday-photos.tsv and more-everyday-photos.tsv, each photo among its set's things
                (each thing's first name).

usage: clip_zero_shot_sets.py ATTEND MODEL
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys

STAMPS = "/usr/share/tuxpaint/stamps"
KINDS = {"animals/birds": "bird", "animals/fish": "fish", "animals/insects": "insect", "animals/mammals": "mammal",
         "clothes": "piece of clothing", "food": "food", "plants": "plant", "vehicles": "vehicle",
         "household": "household object", "town": "building", "sports": "sports equipment", "space": "space"}


def classify(attend, model, labels, files):
    out = subprocess.run([attend, "clip", "classify", "--model", model, "--labels", ",".join(labels), "--json"] + files,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(files), (len(rows), len(files))
    return [[x["label"] for x in sorted(r["labels"], key=lambda x: -x["probability"])] for r in rows]


def main():
    attend, model = sys.argv[1:3]
    files, truth = [], []
    for folder, word in KINDS.items():
        for f in sorted(glob.glob(f"{STAMPS}/{folder}/**/*.png", recursive=True)):
            files.append(f)
            truth.append(word)
    ranked = classify(attend, model, sorted(set(KINDS.values())), files)
    right = collections.Counter(t for t, r in zip(truth, ranked) if r[0] == t)
    total = collections.Counter(truth)
    print(f"stamp kinds: {sum(right.values())} of {len(files)} "
          f"({', '.join(f'{w} {right[w]}/{total[w]}' for w in KINDS.values())})")

    files, names = [], []
    for f in sorted(glob.glob(f"{STAMPS}/**/*.png", recursive=True)):
        if any(f"/{skip}/" in f for skip in ("symbols", "seasonal", "cartoon")) or not os.path.exists(f[:-4] + ".txt"):
            continue
        with open(f[:-4] + ".txt", encoding="utf-8", errors="replace") as text:
            first = text.readline().strip().rstrip(".!")
        name = re.sub(r"^(an?|the|some)\s+", "", first, flags=re.I).lower()
        if name and "," not in name and len(name.split()) <= 3:
            files.append(f)
            names.append(name)
    ranked = classify(attend, model, sorted(set(names)), files)
    top1 = sum(r[0] == n for r, n in zip(ranked, names))
    top5 = sum(n in r[:5] for r, n in zip(ranked, names))
    print(f"stamp names: {len(files)} stamps among {len(set(names))} names: top-1 {top1}, top-5 {top5}")

    here = os.path.dirname(os.path.abspath(__file__))
    scores = []
    for tsv in ("everyday-photos.tsv", "more-everyday-photos.tsv"):
        path = os.path.join(here, "data", tsv)
        rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip() and not line.startswith("#")]
        # The TSVs' paths are relative to the TSV's folder.
        photos = [os.path.normpath(os.path.join(os.path.dirname(path), r[0])) for r in rows]
        things = [r[1].split("|")[0] for r in rows]
        ranked = classify(attend, model, things, photos)
        scores.append(f"{sum(r[0] == t for r, t in zip(ranked, things))} of {len(rows)}")
    print(f"everyday: {' and '.join(scores)}")


if __name__ == "__main__":
    main()
