#!/usr/bin/env bash
# The safety stage of attend serve against independent peers: personal data (email, phone, payment_card, iban, secret
# spans on Benchmarks/data/personal-data.jsonl, the test set; tune on personal-data-dev.jsonl) beside scrubadub 2.0,
# phonenumbers' matcher over the set's 7 regions, python-stdnum's IBAN check and detect-secrets 1.5; text categories
# (games, science, sound on Debian package descriptions, categories-test.jsonl, the policy categories-policy.json)
# beside TF-IDF + logistic regression fitted on categories-train.jsonl and on the policy's 8 examples alone.
# The sets come from Benchmarks/make_safety_sets.py, the peers from Benchmarks/safety_peers.py (its header says how
# each is scored). Prints each side's lines, then one markdown table.
#   Benchmarks/safety.sh            (NO_BUILD=1 skips swift build; ATTEND=path runs another attend binary)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.cache/venv/bin/python
data=Benchmarks/data
[ -x "$py" ] || python3 -m venv .cache/venv
"$py" -c "import faker, stdnum, scrubadub, detect_secrets, sklearn, phonenumbers" 2>/dev/null ||
  .cache/venv/bin/pip install --quiet faker python-stdnum scrubadub==2.0.1 detect-secrets==1.5.0 scikit-learn phonenumbers
[ "${NO_BUILD:-}" = 1 ] || swift build -c release --product attend >/dev/null
mkdir -p .cache/bench
attend_out=.cache/bench/safety-attend.tsv
peers_out=.cache/bench/safety-peers.tsv
if ! "${ATTEND:-.build/release/attend}" bench safety --personal-data $data/personal-data.jsonl \
    --categories $data/categories-test.jsonl --policy $data/categories-policy.json --calibrate $data/categories-train.jsonl > "$attend_out" 2> .cache/bench/safety-attend.err; then
  echo "safety: attend bench safety failed (the table shows the peers only):" >&2
  tail -5 .cache/bench/safety-attend.err >&2
  : > "$attend_out"
fi
"$py" Benchmarks/safety_peers.py --personal-data $data/personal-data.jsonl --categories-test $data/categories-test.jsonl \
  --categories-train $data/categories-train.jsonl --policy $data/categories-policy.json > "$peers_out"
cat "$attend_out" "$peers_out"
echo
"$py" - "$attend_out" "$peers_out" <<'PY'
import sys
rows, times = [], []
for path in sys.argv[1:]:
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) == 7:
            rows.append(f)
        elif len(f) == 3 and f[1].endswith("-ms-per-text"):
            times.append(f)
attend = {r[1]: r for r in rows if r[0] == "attend"}
peers = [r for r in rows if not r[0].startswith("attend")]
sweep = [r for r in rows if r[0] == "attend-sweep"]
names = list(dict.fromkeys(["email", "phone", "payment_card", "iban", "secret", *(r[1] for r in peers), *attend]))
names = [n for n in names if n in attend or any(r[1] == n for r in peers)]
print("| kind | Attend P | Attend R | peer | peer P | peer R |")
print("|---|---|---|---|---|---|")
for name in names:
    a = attend.get(name)
    ap, ar = (a[5], a[6]) if a else ("-", "-")
    mine = [r for r in peers if r[1] == name] or [None]
    for p in mine:
        print(f"| {name} | {ap} | {ar} | {p[0] if p else '-'} | {p[5] if p else '-'} | {p[6] if p else '-'} |")
if sweep:
    print()
    print("Attend's categories over thresholds (the curve to choose one from):")
    print()
    print("| category@threshold | tp | fp | fn | P | R |")
    print("|---|---|---|---|---|---|")
    for r in sweep:
        print(f"| {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |")
if times:
    print()
    print("| who | ms per text |")
    print("|---|---|")
    for who, name, ms in times:
        print(f"| {who} ({name[:-len('-ms-per-text')]}) | {ms} |")
print()
print("P, R: precision, recall. Spans match when they overlap a gold span of the same kind; detect-secrets has no offsets")
print("and is counted per line (a line with a gold secret and a report is one true positive); detect-secrets-spans places")
print("its reported strings in the line. Categories: flagged at the threshold chosen for best F1 on categories-train.jsonl")
print("(the attend-calibrated lines), labels from Debian's Section field.")
PY
