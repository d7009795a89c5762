"""Builds an English corpus for the word2vec benchmarks from text already on a Debian machine.

Sources (installed by scripts/setup-corpus.sh): the King James Bible (package bible-kjv, printed by its
`bible` program), Jane Austen's six novels (package r-cran-janeaustenr: an R lazy-load database of
zlib-compressed serialized R character vectors, decoded here), and man pages from /usr/share/man/man1
rendered by `man` in sorted order until the corpus reaches --megabytes.

Normalization (text8-like): lower case, every run of characters other than a-z and 0-9 becomes one
space, one sentence per source line, empty lines dropped. Output is written atomically.

    python3 scripts/build-corpus.py --megabytes 90 --output .cache/corpus/english.txt
"""
import argparse
import concurrent.futures
import glob
import os
import re
import struct
import subprocess
import sys
import zlib

WORD_RUNS = re.compile(r"[^a-z0-9]+")


def normalize(lines):
    for line in lines:
        text = WORD_RUNS.sub(" ", line.lower()).strip()
        if text:
            yield text


def bible():
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    # Each verse starts with a reference such as "Ge1:1 ".
    return [re.sub(r"^\S+\d+:\d+\s+", "", line) for line in out.splitlines()]


AUSTEN_BOOKS = ["emma", "mansfield-park", "northanger-abbey", "persuasion", "pride-and-prejudice", "sense-and-sensibility"]


def austen_books(path="/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"):
    """The six novels' lines, one list per novel, in the database's (alphabetical) order: AUSTEN_BOOKS."""
    data = open(path, "rb").read()
    books, pos = [], 0
    while pos + 4 < len(data):
        d = zlib.decompressobj()
        blob = d.decompress(data[pos + 4:])
        pos = len(data) - len(d.unused_data)
        # Serialized R (XDR): a CHARSXP is a 4-byte flags word with type 9, a 4-byte length, then bytes.
        lines, i = [], 0
        while i + 8 <= len(blob):
            flags, = struct.unpack(">i", blob[i:i + 4])
            if flags & 0xFF == 9:
                n, = struct.unpack(">i", blob[i + 4:i + 8])
                if 0 <= n < 100000 and i + 8 + n <= len(blob):
                    lines.append(blob[i + 8:i + 8 + n].decode("utf-8", "replace"))
                    i += 8 + n
                    continue
            i += 4
        books.append(lines)
    return books


def austen():
    return [line for book in austen_books() for line in book]


def render(page):
    env = dict(os.environ, MANWIDTH="2000", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "-l", "-P", "cat", page], capture_output=True, env=env)
    return r.stdout.decode("utf-8", "replace").splitlines()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--megabytes", type=float, default=90)
    p.add_argument("--output", default=".cache/corpus/english.txt")
    p.add_argument("--austen-raw", help="instead: write the first 1 MB of Austen, not normalized, here (character-level GPT)")
    a = p.parse_args()
    if a.austen_raw:
        os.makedirs(os.path.dirname(a.austen_raw) or ".", exist_ok=True)
        open(a.austen_raw + ".tmp", "w", encoding="utf-8").write("\n".join(austen())[:1_000_000])
        os.replace(a.austen_raw + ".tmp", a.austen_raw)
        print(a.austen_raw)
        return
    os.makedirs(os.path.dirname(a.output) or ".", exist_ok=True)
    tmp = a.output + ".tmp"
    budget = int(a.megabytes * 1e6)
    size = 0
    with open(tmp, "w", encoding="utf-8") as f:
        for name, source in (("bible", bible), ("austen", austen)):
            for s in normalize(source()):
                f.write(s + "\n")
                size += len(s) + 1
            print(f"{name}: corpus now {size / 1e6:.1f} MB", file=sys.stderr)
        pages = sorted(glob.glob("/usr/share/man/man1/*"))
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            # Render in chunks so nothing past the budget is rendered.
            for start in range(0, len(pages), 64):
                for lines in pool.map(render, pages[start:start + 64]):
                    for s in normalize(lines):
                        f.write(s + "\n")
                        size += len(s) + 1
                if size >= budget:
                    break
        print(f"man pages: corpus now {size / 1e6:.1f} MB", file=sys.stderr)
    os.replace(tmp, a.output)
    print(a.output)


if __name__ == "__main__":
    main()
