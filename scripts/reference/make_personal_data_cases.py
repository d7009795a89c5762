"""Short labelled cases for the personal-data detector's tests (Tests/AttendKnowledgeTests), drawn as
Benchmarks/make_safety_sets.py draws its sets but with seed 7: [{"text", "spans": [{"kind", "start", "end"}], "note"}],
offsets in Unicode code points (Python str indices, end exclusive), kinds email, phone, payment_card, iban, secret.

Every positive is checked by an independent validator (stdnum.luhn for cards, stdnum.iban for IBANs, phonenumbers
for phones, a regex per secret format), and every card and IBAN case has a negative twin: the same text with one
digit of the number changed, so that its check fails (checked), and no span for it. The rest are hard negatives
(dates, versions, order numbers, UUIDs, Luhn-failing 16-digit numbers, IBANs with wrong check digits, "sk-learn",
masked passwords, sentences from the PostgreSQL manual, ...). Requires postgresql-doc-15 and:

    .cache/venv/bin/pip install faker==40.63.0 python-stdnum==2.2 phonenumbers==9.0.43
    .cache/venv/bin/python scripts/reference/make_personal_data_cases.py > Tests/AttendSafetyTests/Fixtures/personal_data_cases.json
"""
import collections
import importlib.util
import json
import pathlib
import re
import string
import sys

from stdnum import iban, luhn

root = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("make_safety_sets", root / "Benchmarks" / "make_safety_sets.py")
sets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sets)

sets.fixed_hash_seed()
SEED = 7
sentences, _ = sets.pg_sentences()
g = sets.Generator(SEED, pg_sentences=sets.random.Random(SEED).sample(sentences, 40))
rng = g.rng
locales = list(sets.LOCALES)
cases = []


def case(line, note):
    assert sets.check_line(line.text, line.spans), line.text
    return {"text": line.text, "spans": [{k: s[k] for k in ("kind", "start", "end")} for s in line.spans], "note": note}


def twin(line, span, note):
    """The line with one digit of span's value changed so that its checksum fails, and without that span."""
    v = span["value"]
    digits = [i for i, c in enumerate(v) if c.isdigit()]
    while True:
        i = rng.choice(digits)
        bad = v[:i] + rng.choice([d for d in string.digits if d != v[i]]) + v[i + 1:]
        ok = luhn.is_valid(re.sub(r"[ -]", "", bad)) if span["kind"] == "payment_card" else iban.is_valid(bad)
        if not ok:
            break
    text = line.text[:span["start"]] + bad + line.text[span["end"]:]
    spans = [s for s in line.spans if s is not span]
    assert sets.check_line(text, spans), text
    return {"text": text, "spans": [{k: s[k] for k in ("kind", "start", "end")} for s in spans], "note": note}


def one(kind, sub=None):
    loc = rng.choice(locales)
    context = rng.choice(["chat", "log", "config", "prose", "prose"])
    for _ in range(50):
        line = sets.Line()
        if context == "chat":
            line.add(f"{g.fakers[loc].user_name()}: ")
        elif context == "log":
            line.add(f"{rng.choice(['INFO', 'WARN'])} {rng.choice(['api', 'billing', 'auth'])}: ")
        g.clause(line, "chat" if context in ("chat", "prose") else context, kind, loc, sub)
        if sets.check_line(line.text, line.spans):
            return line, loc
    raise RuntimeError(kind)


per_kind = {"email": 15, "phone": 20, "payment_card": 20, "iban": 20}
for kind, n in per_kind.items():
    for _ in range(n):
        line, loc = one(kind)
        cases.append(case(line, f"{kind} ({loc})"))
        if kind in ("payment_card", "iban"):
            cases.append(twin(line, line.spans[0], f"{kind} with one digit changed: check fails, not a span"))
for sub in ["aws", "github", "openai", "openai-proj", "stripe", "slack", "google", "jwt", "pem", "assignment"]:
    for _ in range(3 if sub != "assignment" else 6):
        line, loc = one("secret", sub)
        cases.append(case(line, f"secret: {sub}"))
# Two spans in one text, each kind once at least.
for a, b in [("email", "phone"), ("payment_card", "iban"), ("secret", "email"), ("iban", "phone"), ("phone", "payment_card"),
             ("secret", "iban")]:
    loc = rng.choice(locales)
    line = sets.Line()
    g.clause(line, "chat", a, loc)
    line.add(" ")
    g.clause(line, "chat", b, loc)
    if sets.check_line(line.text, line.spans):
        cases.append(case(line, f"{a} and {b}"))
# Hard negatives: every kind of distractor the sets use.
negatives = collections.Counter()
while sum(negatives.values()) < 45:
    loc = rng.choice(locales)
    before = dict(g.stats)
    text = g.negative(loc)
    kind = next(k for k, v in g.stats.items() if v != before.get(k, 0))
    if negatives[kind] >= 3 or len(text) > 200:
        continue
    negatives[kind] += 1
    cases.append(case(sets.Line().add(text), "negative: " + kind[4:]))

out = "[\n" + ",\n".join(json.dumps(c, ensure_ascii=False) for c in cases) + "\n]\n"
assert len(out.encode()) < 100_000, len(out.encode())
sys.stdout.write(out)
counts = collections.Counter(s["kind"] for c in cases for s in c["spans"])
print(f"{len(cases)} cases, {sum(not c['spans'] for c in cases)} without a span; spans "
      + ", ".join(f"{k} {counts[k]}" for k in sets.KINDS) + f"; {len(out.encode())} bytes", file=sys.stderr)
