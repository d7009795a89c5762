"""Peers for `attend bench safety` (Benchmarks/safety.sh) on the sets from Benchmarks/make_safety_sets.py. Prints, per
peer, one line per kind or category and then a timing line, tab-separated:

    <peer>  <kind or category>  tp  fp  fn  precision  recall
    <peer>  <set>-ms-per-text  X

Personal data (personal-data.jsonl; offsets in code points). A predicted span is a true positive when it overlaps
a gold span of the same kind that no earlier prediction has matched (predictions taken by start), otherwise a
false positive; gold spans left unmatched are false negatives. A peer's overlapping predictions of one kind are
first merged into one (detect-secrets reports one string once per plugin that finds it).
  scrubadub       scrubadub 2.x, its email, phone and credit-card detectors, default locale en_US (phone numbers are
                  looked for as US numbers, or in international form)
  phonenumbers    phonenumbers.PhoneNumberMatcher (leniency VALID) for each of the 7 regions the set's numbers
                  come from, matches merged: what a locale-aware phone detector could find
  stdnum          IBAN candidates by regex (two letters, two digits, 11-30 letters or digits, single spaces allowed),
                  the longest prefix stdnum.iban.is_valid accepts
  detect-secrets  detect-secrets 1.5, all plugins and default filters (default_settings), each text written to a
                  file and read by detect_secrets.core.scan.scan_file, the path `detect-secrets scan` takes. No
                  offsets, so matched by line: tp for a line with a gold secret and >= 1 report, fn for one with a
                  gold secret and none, fp for a line with no gold secret and >= 1 report. (scan_line, the ad-hoc
                  path, searches eagerly and skips the entropy limit: it reports words such as "server".)
  detect-secrets-spans  the same reports placed at their strings' positions in the reported line, scored as spans
Categories (categories-test.jsonl, labels by Debian section): TF-IDF (words and word pairs, sublinear tf) and one
logistic regression per category (C=10, balanced class weights), flagged where the probability reaches the
policy's threshold.
  tfidf-train     fitted on categories-train.jsonl (negatives included)
  tfidf-examples  fitted on the policy's 8 examples per category only, the other categories' examples as negatives

    .cache/venv/bin/python Benchmarks/safety_peers.py --personal-data Benchmarks/data/personal-data.jsonl \\
      --categories-test Benchmarks/data/categories-test.jsonl --categories-train Benchmarks/data/categories-train.jsonl \\
      --policy Benchmarks/data/categories-policy.json
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
import warnings

KINDS = ("email", "phone", "payment_card", "iban", "secret")
REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "IT")


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def merged(spans):
    """Overlapping (start, end) pairs merged, sorted by start."""
    out = []
    for s, e in sorted(set(spans)):
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def score_spans(rows, predicted, kind):
    """predicted: per row, a list of (start, end) of this kind."""
    tp = fp = fn = 0
    for row, pred in zip(rows, predicted):
        gold = [(s["start"], s["end"]) for s in row["spans"] if s["kind"] == kind]
        used = [False] * len(gold)
        for s, e in merged(pred):
            for j, (gs, ge) in enumerate(gold):
                if not used[j] and s < ge and gs < e:
                    used[j] = True
                    tp += 1
                    break
            else:
                fp += 1
        fn += used.count(False)
    return tp, fp, fn


def emit(peer, name, tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    print(f"{peer}\t{name}\t{tp}\t{fp}\t{fn}\t{p:.3f}\t{r:.3f}", flush=True)


def emit_time(peer, name, seconds, n):
    print(f"{peer}\t{name}-ms-per-text\t{seconds * 1000 / n:.3f}", flush=True)


def scrubadub_peer(rows):
    import scrubadub
    import scrubadub.detectors as d
    kinds = {"email": "email", "phone": "phone", "credit_card": "payment_card"}
    scrubber = scrubadub.Scrubber(detector_list=[d.EmailDetector, d.PhoneDetector, d.CreditCardDetector])
    pred = {k: [] for k in kinds.values()}
    t0 = time.perf_counter()
    for row in rows:
        found = {k: [] for k in kinds.values()}
        for f in scrubber.iter_filth(row["text"]):
            for part in getattr(f, "filths", None) or [f]:     # a MergedFilth holds the filth it merged
                if part.type in kinds:
                    found[kinds[part.type]].append((part.beg, part.end))
        for k in pred:
            pred[k].append(found[k])
    elapsed = time.perf_counter() - t0
    for k in ("email", "phone", "payment_card"):
        emit("scrubadub", k, *score_spans(rows, pred[k], k))
    emit_time("scrubadub", "personal-data", elapsed, len(rows))


def phonenumbers_peer(rows):
    import phonenumbers
    pred = []
    t0 = time.perf_counter()
    for row in rows:
        pred.append([(m.start, m.end) for region in REGIONS for m in phonenumbers.PhoneNumberMatcher(row["text"], region)])
    elapsed = time.perf_counter() - t0
    emit("phonenumbers", "phone", *score_spans(rows, pred, "phone"))
    emit_time("phonenumbers", "personal-data", elapsed, len(rows))


IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")


def stdnum_peer(rows):
    from stdnum import iban
    pred = []
    t0 = time.perf_counter()
    for row in rows:
        text, found, pos = row["text"], [], 0
        while m := IBAN_CANDIDATE.search(text, pos):
            s, pos = m.group(0), m.start() + 1    # a candidate can run on into the next one
            for end in range(len(s), 14, -1):
                if s[end - 1] == " " or (m.start() + end < len(text) and text[m.start() + end].isalnum()):
                    continue
                if iban.is_valid(s[:end]):
                    found.append((m.start(), m.start() + end))
                    pos = m.start() + end
                    break
        pred.append(found)
    elapsed = time.perf_counter() - t0
    emit("stdnum", "iban", *score_spans(rows, pred, "iban"))
    emit_time("stdnum", "personal-data", elapsed, len(rows))


def detect_secrets_peer(rows):
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings
    line_tp = line_fp = line_fn = 0
    spans = []
    with tempfile.TemporaryDirectory() as tmp, default_settings():
        paths = []
        for i, row in enumerate(rows):
            path = os.path.join(tmp, f"text-{i}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(row["text"] + "\n")
            paths.append(path)
        t0 = time.perf_counter()
        reports = [list(scan_file(p)) for p in paths]
        elapsed = time.perf_counter() - t0
    for row, found in zip(rows, reports):
        gold = any(s["kind"] == "secret" for s in row["spans"])
        if gold and found:
            line_tp += 1
        elif gold:
            line_fn += 1
        elif found:
            line_fp += 1
        lines = row["text"].split("\n")
        starts = [0]
        for l in lines:
            starts.append(starts[-1] + len(l) + 1)
        mine = []
        for secret in found:
            value = secret.secret_value or ""
            at = lines[secret.line_number - 1].find(value) if value else -1
            if at >= 0:
                s = starts[secret.line_number - 1] + at
                mine.append((s, s + len(value)))
            else:   # no string to place: the whole line
                mine.append((starts[secret.line_number - 1], starts[secret.line_number] - 1))
        spans.append(mine)
    emit("detect-secrets", "secret", line_tp, line_fp, line_fn)
    emit_time("detect-secrets", "personal-data", elapsed, len(rows))
    emit("detect-secrets-spans", "secret", *score_spans(rows, spans, "secret"))


def tfidf_peers(test, train, policy):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    cats = [c["name"] for c in policy["categories"]]
    thresholds = {c["name"]: c.get("threshold", 0.5) for c in policy["categories"]}
    examples = [(e, [c["name"]]) for c in policy["categories"] for e in c["examples"]]
    for peer, data, min_df in (("tfidf-train", [(r["text"], r["labels"]) for r in train], 2), ("tfidf-examples", examples, 1)):
        texts = [t for t, _ in data]
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)
        x = vec.fit_transform(texts)
        models = {}
        for c in cats:
            y = [c in labels for _, labels in data]
            models[c] = LogisticRegression(C=10.0, class_weight="balanced", max_iter=2000).fit(x, y)
        t0 = time.perf_counter()
        xt = vec.transform([r["text"] for r in test])
        probs = {c: models[c].predict_proba(xt)[:, list(models[c].classes_).index(True)] for c in cats}
        elapsed = time.perf_counter() - t0
        for c in cats:
            tp = fp = fn = 0
            for r, p in zip(test, probs[c]):
                flagged, gold = p >= thresholds[c], c in r["labels"]
                tp += flagged and gold
                fp += flagged and not gold
                fn += gold and not flagged
            emit(peer, c, tp, fp, fn)
        emit_time(peer, "categories", elapsed, len(test))


def main():
    ap = argparse.ArgumentParser(description="peers for attend bench safety")
    ap.add_argument("--personal-data")
    ap.add_argument("--categories-test")
    ap.add_argument("--categories-train")
    ap.add_argument("--policy")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.personal_data:
        rows = load_jsonl(args.personal_data)
        for row in rows:
            for s in row["spans"]:
                assert s["kind"] in KINDS and 0 <= s["start"] < s["end"] <= len(row["text"]), s
        scrubadub_peer(rows)
        phonenumbers_peer(rows)
        stdnum_peer(rows)
        detect_secrets_peer(rows)
    if args.categories_test:
        if not (args.categories_train and args.policy):
            sys.exit("--categories-test needs --categories-train and --policy")
        with open(args.policy, encoding="utf-8") as f:
            policy = json.load(f)
        tfidf_peers(load_jsonl(args.categories_test), load_jsonl(args.categories_train), policy)


if __name__ == "__main__":
    main()
