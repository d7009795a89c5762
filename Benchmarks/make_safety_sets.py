"""Labelled evaluation sets for the safety stage of `attend serve` (`attend bench safety`, Benchmarks/safety.sh).

personal-data.jsonl (test) and personal-data-dev.jsonl (dev, seed + 1000): one JSON object a line,
{"text": ..., "spans": [{"kind": K, "start": S, "end": E}, ...]}, offsets in Unicode code points (Python str
indices, end exclusive), K one of email, phone, payment_card, iban, secret. About 60 % of the lines hold 1 to 3 spans
embedded in e-mails, chat messages, log lines, config snippets and support tickets; the rest are hard negatives
with no span at all: dates, times, versions, IPv4 addresses, ISBNs, UUIDs, git SHAs, prices, order numbers,
postcodes, 16-digit numbers that fail the Luhn check, IBAN-shaped strings with wrong check digits, year ranges,
thousands separators, words like "sk-learn", masked or templated passwords, and sentences with digits from the
PostgreSQL 15 manual. Positive lines carry some of the same distractors.

Where the values come from, and what checks them (independently of the code that embeds them):
  email         Faker email() (mostly @example.*), free_email(), company_email(); a plain address regex
  phone         Faker phone_number() in en_US en_GB de_DE fr_FR nl_NL es_ES it_IT, kept only when the phonenumbers
                package parses it as a valid number of that locale's region (the span is Faker's whole string,
                an extension such as "x1234" included)
  payment_card  Faker credit_card_number() over all its issuers, plain or grouped with spaces or dashes; stdnum.luhn
  iban          Faker iban() per locale, compact or in groups of 4; stdnum.iban
  secret        AWS key ids, GitHub ghp_ tokens, OpenAI sk- and sk-proj- keys, Stripe sk_live_, Slack xoxb-, Google
                AIza keys, JWTs, PEM private keys (BEGIN line to END line), and the value alone of password = ... /
                api_key: ... assignments; a regex per format
Every span is checked to be text[start:end] of the value put there, and every line is checked to hold no
e-mail address, Luhn-valid card-shaped number, valid IBAN or secret-shaped token outside its spans (a line that
does is drawn again). Secret bodies come from random.Random(seed) so that the sets are reproducible
(--os-secrets draws them from the secrets module instead: same formats, different strings every run).

categories-policy.json, categories-train.jsonl, categories-test.jsonl: Debian bookworm package descriptions (from
`apt-cache dumpavail`; long descriptions from the Translation-en index when apt has it, which needs
`apt-get update -o Acquire::Languages=en` on images that set Acquire::Languages "none") labelled by Section:
games, science and sound against packages from other topic sections. Sections that say how a package is built
rather than what it is for (libs, libdevel, python, perl, doc, ...) are left out of the negatives, one binary
package per source package is kept, and train and test never share a source package or a description.

    .cache/venv/bin/pip install faker==40.63.0 python-stdnum==2.2 phonenumbers==9.0.43
    .cache/venv/bin/python Benchmarks/make_safety_sets.py [--seed 1] [--split both|dev|test] [--sets personal-data categories]
"""
import argparse
import base64
import collections
import datetime
import glob
import html.parser
import json
import os
import pathlib
import random
import re
import secrets
import string
import subprocess
import sys
import uuid

import phonenumbers
from faker import Faker
from stdnum import ean, iban, isbn, luhn

KINDS = ("email", "phone", "payment_card", "iban", "secret")
LOCALES = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "nl_NL": "NL", "es_ES": "ES", "it_IT": "IT"}
CARD_TYPES = ["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb15", "jcb16", "maestro"]
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
URLSAFE = ALNUM + "_-"
PG_HTML = "/usr/share/doc/postgresql-doc-15/html"

EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
SECRET_RES = {
    "aws": re.compile(r"^AKIA[A-Z0-9]{16}$"),
    "github": re.compile(r"^ghp_[A-Za-z0-9]{36}$"),
    "openai": re.compile(r"^sk-[A-Za-z0-9]{48}$"),
    "openai-proj": re.compile(r"^sk-proj-[A-Za-z0-9_-]{64}$"),
    "stripe": re.compile(r"^sk_live_[A-Za-z0-9]{24}$"),
    "slack": re.compile(r"^xoxb-\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}$"),
    "google": re.compile(r"^AIza[A-Za-z0-9_-]{35}$"),
    "jwt": re.compile(r"^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$"),
    "pem": re.compile(r"^-----BEGIN (RSA )?PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END (RSA )?PRIVATE KEY-----$"),
    "assignment": re.compile(r"^[A-Za-z0-9!#%&*+\-_=~^]{8,40}$"),
}
# Anything shaped like a positive that may not appear outside a line's spans.
LEAK_SECRET = re.compile(r"AKIA[A-Z0-9]{16}|ghp_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|sk_live_|xox[bpa]-|AIza[A-Za-z0-9_-]{30,}"
                         r"|eyJ[A-Za-z0-9_-]+\.eyJ|PRIVATE KEY")
LEAK_DIGITS = re.compile(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-])")
IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}")
CARD_PREFIX = re.compile(r"^(4|5[0-9]|2[2-7]|3[0-9]|6[0-9])")


def valid_ibans_in(text):
    """(start, end) of the longest valid IBAN at each candidate, spaces allowed between characters."""
    found, pos = [], 0
    while m := IBAN_CANDIDATE.search(text, pos):
        s, pos = m.group(0), m.start() + 1
        for end in range(len(s), 14, -1):
            cand = s[:end]
            after = m.start() + end
            if cand.endswith(" ") or (after < len(text) and text[after].isalnum()):
                continue
            if iban.is_valid(cand):
                found.append((m.start(), after))
                pos = after
                break
    return found


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Line:
    """Text built piece by piece, with spans in code points."""

    def __init__(self):
        self.parts, self.length, self.spans = [], 0, []

    def add(self, s):
        self.parts.append(s)
        self.length += len(s)
        return self

    def span(self, kind, value):
        self.spans.append({"kind": kind, "start": self.length, "end": self.length + len(value), "value": value})
        return self.add(value)

    def fill(self, template, kind=None, value=None):
        """template holds {v} at most once; the value there becomes a span of kind."""
        if "{v}" not in template:
            return self.add(template)
        pre, post = template.split("{v}")
        return self.add(pre).span(kind, value).add(post)

    @property
    def text(self):
        return "".join(self.parts)


# Prose clauses (e-mails, chat, tickets), with {v} where the value goes.
PROSE = {
    "email": ["You can reach me at {v} if anything is unclear.", "Please send the invoice to {v} instead.",
              "My new address is {v}, the old one no longer works.", "cc {v}", "Contact: {v}",
              "Forwarding this to {v} for review.", "Can you add {v} to the mailing list?",
              "Reply to {v} with the signed form."],
    "phone": ["Call me on {v} after 5pm.", "My number is {v}.", "You can reach our office at {v}.", "Tel.: {v}",
              "Mobile {v}", "Please ring {v} to confirm the appointment.", "Text me at {v} when you arrive."],
    "payment_card": ["My card number is {v}, expiry 04/27.", "Please charge {v} for the renewal.",
                     "The payment with card {v} was declined.", "Card: {v}",
                     "I used the card ending in the number {v} for that order.", "Card on file: {v} (exp 11/26)"],
    "iban": ["Please transfer the amount to IBAN {v}.", "Our bank account: {v} (BIC {bic}).", "Refund to {v} please.",
             "IBAN: {v}", "The rent goes to {v} on the first of the month.", "New account for payouts: {v}"],
    "secret": ["Here is the key you asked for: {v}", "I accidentally pasted my token {v} in the channel, please rotate it",
               "Use {v} for the staging environment", "The deploy failed with key {v} (see log)",
               "Token: {v}", "Could you check why {v} is rejected?"],
}
PROSE_LOCAL = {
    "de_DE": {"email": ["Schreiben Sie mir an {v}."], "phone": ["Meine Telefonnummer ist {v}.", "Rückruf unter {v} erbeten."],
              "iban": ["Bitte überweisen Sie den Betrag auf {v}.", "Kontoverbindung: {v}"],
              "payment_card": ["Meine Kartennummer lautet {v}."]},
    "fr_FR": {"email": ["Écrivez-moi à {v}."], "phone": ["Mon numéro est le {v}.", "Appelez-moi au {v} après 18 h."],
              "iban": ["Veuillez virer le montant sur {v}.", "Coordonnées bancaires : {v}"],
              "payment_card": ["Mon numéro de carte est {v}."]},
    "es_ES": {"email": ["Escríbeme a {v}."], "phone": ["Mi número es {v}.", "Llámame al {v} por la tarde."],
              "iban": ["Por favor, transfiera el importe a {v}."], "payment_card": ["Mi tarjeta es {v}."]},
    "it_IT": {"email": ["Scrivimi a {v}."], "phone": ["Il mio numero è {v}.", "Chiamami al {v} dopo le 18."],
              "iban": ["Si prega di effettuare il bonifico su {v}."], "payment_card": ["Il numero della carta è {v}."]},
    "nl_NL": {"email": ["Mail me op {v}."], "phone": ["Mijn nummer is {v}.", "Bel me op {v} na vijven."],
              "iban": ["Graag overmaken naar {v}."], "payment_card": ["Mijn kaartnummer is {v}."]},
}
# Structured clauses (log lines, config files).
LOG = {
    "email": ["user={v}", "from=<{v}>", "to={v} status=sent", "login failed for {v}"],
    "phone": ["phone=\"{v}\"", "sms to {v} queued", "callback_number=\"{v}\""],
    "payment_card": ["card={v}", "pan={v} result=declined", "charge card {v} amount=49.99"],
    "iban": ["iban={v}", "payout to {v} scheduled", "sepa_debit account={v}"],
    "secret": ["Authorization: Bearer {v}", "token={v}", "key_id={v}", "using credential {v}"],
}
CONFIG = {
    "email": ["admin_email = {v}", "notify: {v}", "SMTP_FROM={v}"],
    "phone": ["support_phone: \"{v}\"", "oncall_phone = \"{v}\""],
    "payment_card": ["test_card_number: {v}", "card = \"{v}\""],
    "iban": ["iban: {v}", "PAYOUT_IBAN=\"{v}\""],
    "secret": {"aws": ["aws_access_key_id = {v}", "AWS_ACCESS_KEY_ID={v}"], "github": ["GITHUB_TOKEN={v}", "token: {v}"],
               "openai": ["OPENAI_API_KEY={v}", "openai_key: {v}"], "openai-proj": ["OPENAI_API_KEY=\"{v}\""],
               "stripe": ["stripe_secret: {v}", "STRIPE_KEY={v}"], "slack": ["slack_bot_token = \"{v}\"", "SLACK_TOKEN={v}"],
               "google": ["google_api_key: {v}", "MAPS_KEY={v}"], "jwt": ["jwt: {v}", "SESSION_TOKEN={v}"],
               "pem": ["# deploy key\n{v}", "ssl_key: |\n{v}"]},
}
ASSIGN_KEYS = ["password", "passwd", "db_password", "DB_PASSWORD", "api_key", "API_KEY", "apiKey", "secret_key",
               "client_secret", "auth_token", "POSTGRES_PASSWORD", "smtp_password"]
ASSIGN_FORMS = ["{k} = {v}", "{k}={v}", "{k}: {v}", "{k} = \"{v}\"", "{k}: '{v}'", "\"{k}\": \"{v}\"", "{k}={v}"]
ASSIGN_PROSE = ["I set {a} in the config yesterday", "the env file still has {a} in it", "{a}"]


class Generator:
    def __init__(self, seed, os_secrets=False, pg_sentences=()):
        self.rng = random.Random(seed)
        self.srng = secrets.SystemRandom() if os_secrets else self.rng
        self.fakers = {}
        for i, loc in enumerate(LOCALES):
            self.fakers[loc] = Faker(loc)
            self.fakers[loc].seed_instance(seed * 100 + i)
        self.pg, self.pg_next = list(pg_sentences), 0
        self.stats = collections.Counter()
        self.phone_formats = collections.Counter()
        self.phone_rejects = collections.Counter()

    # ---- positives -------------------------------------------------------------------------------------------
    def email(self, loc):
        f = self.fakers[loc]
        r = self.rng.random()
        v = f.email() if r < 0.7 else f.free_email() if r < 0.85 else f.company_email()
        assert EMAIL_RE.match(v), v
        return v

    def phone(self, loc):
        f, region = self.fakers[loc], LOCALES[loc]
        for _ in range(100):
            v = f.phone_number()
            try:
                n = phonenumbers.parse(v, region)
            except phonenumbers.NumberParseException:
                self.phone_rejects[loc, "unparsable"] += 1
                continue
            if not phonenumbers.is_valid_number(n):
                self.phone_rejects[loc, "invalid"] += 1
                continue
            self.phone_formats[loc, re.sub(r"\d", "9", v)] += 1
            self.stats["phone-ext" if n.extension else "phone-no-ext"] += 1
            return v
        raise RuntimeError("no valid phone number from Faker " + loc)

    def card(self, loc):
        kind = self.rng.choice(CARD_TYPES)
        digits = self.fakers[loc].credit_card_number(kind)
        assert digits.isdigit() and luhn.is_valid(digits), digits
        self.stats["card-" + kind] += 1
        r = self.rng.random()
        if r < 0.5:
            return digits
        sep = " " if r < 0.8 else "-"
        if len(digits) == 15:     # Amex style 4-6-5
            groups = [digits[:4], digits[4:10], digits[10:]]
        elif len(digits) == 14:   # Diners 4-6-4
            groups = [digits[:4], digits[4:10], digits[10:]]
        else:
            groups = [digits[i:i + 4] for i in range(0, len(digits), 4)]
        v = sep.join(groups)
        assert luhn.is_valid(v.replace(sep, ""))
        self.stats["card-grouped"] += 1
        return v

    def iban(self, loc):
        v = self.fakers[loc].iban()
        assert iban.is_valid(v), v
        if self.rng.random() < 0.4:
            v = iban.format(v)   # groups of 4 with spaces
            self.stats["iban-grouped"] += 1
        assert iban.is_valid(v)
        return v

    def secret_value(self, sub, loc="en_US"):
        s = self.srng
        pick = lambda alphabet, n: "".join(s.choice(alphabet) for _ in range(n))
        if sub == "aws":
            v = "AKIA" + pick(UPPER_DIGITS, 16)
        elif sub == "github":
            v = "ghp_" + pick(ALNUM, 36)
        elif sub == "openai":    # legacy user keys: 20 characters, "T3BlbkFJ" (base64 of "OpenAI"), 20 characters
            v = "sk-" + pick(ALNUM, 20) + "T3BlbkFJ" + pick(ALNUM, 20)
        elif sub == "openai-proj":
            v = "sk-proj-" + pick(URLSAFE, 64)
        elif sub == "stripe":
            v = "sk_live_" + pick(ALNUM, 24)
        elif sub == "slack":
            v = f"xoxb-{pick(string.digits, s.randint(10, 13))}-{pick(string.digits, s.randint(10, 13))}-{pick(ALNUM, 24)}"
        elif sub == "google":
            v = "AIza" + pick(URLSAFE, 35)
        elif sub == "jwt":
            header = {"alg": s.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
            payload = {"sub": str(s.randint(1000, 99999999)), "name": self.fakers[loc].name(),
                       "iat": s.randint(1600000000, 1760000000)}
            if s.random() < 0.5:
                payload["role"] = s.choice(["admin", "user", "service"])
            enc = lambda o: b64url(json.dumps(o, separators=(",", ":")).encode())
            v = f"{enc(header)}.{enc(payload)}.{b64url(bytes(s.getrandbits(8) for _ in range(32)))}"
        elif sub == "pem":
            n = s.randint(6, 12) * 48 - 12
            body = b"\x30\x82" + n.to_bytes(2, "big") + b"\x02\x01\x00\x02\x82\x01\x01\x00" + bytes(s.getrandbits(8) for _ in range(n - 4))
            b = base64.b64encode(body).decode()
            label = "RSA PRIVATE KEY" if s.random() < 0.8 else "PRIVATE KEY"
            lines = [b[i:i + 64] for i in range(0, len(b), 64)]
            v = f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"
        elif sub == "assignment":
            r = s.random()
            if r < 0.45:
                chars = ALNUM + "!#%&*+-_=~^"
                v = pick(ALNUM, 1) + pick(chars, s.randint(8, 18)) + pick(ALNUM, 1)
            elif r < 0.7:
                v = "".join(s.choice("0123456789abcdef") for _ in range(s.choice([32, 40])))
            elif r < 0.9:
                v = pick(ALNUM, 1) + pick(URLSAFE, s.randint(20, 30)) + pick(ALNUM, 1)
            else:   # a human-chosen password: word, year, symbol
                v = ""
                while len(v) < 8:
                    v = self.fakers["en_US"].word().capitalize() + str(s.randint(1970, 2025)) + s.choice("!#*%")
        else:
            raise ValueError(sub)
        assert SECRET_RES[sub].match(v), (sub, v)
        return v

    def secret_sub(self):
        return self.rng.choices(["aws", "github", "openai", "openai-proj", "stripe", "slack", "google", "jwt", "pem", "assignment"],
                                weights=[10, 10, 7, 6, 8, 8, 8, 12, 8, 23])[0]

    # ---- hard negatives ----------------------------------------------------------------------------------------
    def luhn_fail_16(self):
        d = self.rng.choice("45") + "".join(self.rng.choice(string.digits) for _ in range(15))
        if luhn.is_valid(d):
            d = d[:-1] + str((int(d[-1]) + self.rng.randint(1, 9)) % 10)
        assert not luhn.is_valid(d)
        r = self.rng.random()
        return d if r < 0.4 else " ".join(d[i:i + 4] for i in range(0, 16, 4)) if r < 0.8 else "-".join(d[i:i + 4] for i in range(0, 16, 4))

    def bad_iban(self, loc):
        v = self.fakers[loc].iban()
        check = v[2:4]
        while True:
            other = f"{self.rng.randint(0, 99):02d}"
            if other != check:
                break
        bad = v[:2] + other + v[4:]
        assert not iban.is_valid(bad), bad
        return iban.format(bad) if self.rng.random() < 0.4 else bad

    def isbn13(self):
        core = "978" + "".join(self.rng.choice(string.digits) for _ in range(9))
        v = core + ean.calc_check_digit(core)
        if self.rng.random() < 0.5:
            v = f"{v[:3]}-{v[3]}-{v[4:6]}-{v[6:12]}-{v[12]}"
        assert isbn.is_valid(v), v
        return v

    def negative(self, loc):
        rng, f = self.rng, self.fakers[loc]
        kind = rng.choices(["date", "time", "version", "ip", "isbn", "uuid", "sha", "price", "order", "postcode", "luhn",
                            "bad_iban", "years", "thousands", "words", "masked", "pg"],
                           weights=[6, 4, 6, 5, 4, 5, 5, 5, 7, 4, 8, 8, 3, 4, 4, 5, 13])[0]
        self.stats["neg-" + kind] += 1
        d = f.date_between(start_date=datetime.date(2010, 1, 1), end_date=datetime.date(2027, 12, 31))
        if kind == "date":
            return rng.choice([f"The meeting moved to {d.isoformat()}.", f"Invoice date: {d.strftime('%d/%m/%Y')}",
                               f"Delivered on {d.strftime('%d.%m.%Y')} at the front desk.", f"Due {d.strftime('%m/%d/%Y')}.",
                               f"Backup from {d.isoformat()} restored."])
        if kind == "time":
            return rng.choice([f"Standup is at {rng.randint(7, 11):02d}:{rng.choice(['00', '15', '30', '45'])}, the deploy window "
                               f"{rng.randint(12, 15)}:00-{rng.randint(16, 18)}:30.", f"It crashed at {rng.randint(0, 23):02d}:"
                               f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} UTC.", f"See you at {rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm."])
        if kind == "version":
            v = f"{rng.randint(1, 17)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
            return rng.choice([f"Upgraded to {v} from {rng.randint(1, 16)}.{rng.randint(0, 9)}.", f"Running v{v}-rc{rng.randint(1, 4)} in staging.",
                               f"Python {rng.choice(['3.9', '3.10', '3.11', '3.12'])}.{rng.randint(0, 12)} and Node {v}",
                               f"version: {v}"])
        if kind == "ip":
            ip = ".".join(str(rng.randint(1, 254)) for _ in range(4))
            return rng.choice([f"The server {ip} answered after 3 retries.", f"listen_addresses = '{ip}'",
                               f"connection from {ip}:{rng.randint(1024, 65535)} refused", f"Gateway 192.168.{rng.randint(0, 255)}.1 is down."])
        if kind == "isbn":
            return rng.choice([f"ISBN {self.isbn13()}", f"The book (ISBN {self.isbn13()}) is back in stock.", f"isbn={self.isbn13()}"])
        if kind == "uuid":
            u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            return rng.choice([f"request_id={u}", f"Session {u} expired.", f"id: {u}"])
        if kind == "sha":
            h = "".join(rng.choice("0123456789abcdef") for _ in range(40))
            return rng.choice([f"commit {h}", f"Fixed in {h[:7]}.", f"sha1: {h}", f"Reverted {h[:10]} and {h[10:17]}."])
        if kind == "price":
            return rng.choice([f"The total is ${rng.randint(1, 9)},{rng.randint(0, 999):03d}.{rng.randint(0, 99):02d}.",
                               f"Preis: {rng.randint(5, 999)},{rng.randint(0, 99):02d} €", f"Only £{rng.randint(1, 99)}.{rng.choice(['50', '99', '00'])} this week.",
                               f"budget USD {rng.randint(1, 99)},{rng.randint(0, 999):03d}"])
        if kind == "order":
            n = "".join(rng.choice(string.digits) for _ in range(rng.randint(6, 12)))
            return rng.choice([f"Order #{n} has shipped.", f"Your order number is {n}.", f"tracking number {n}",
                               f"Ticket {n} was closed.", f"customer_id={n}", f"Please quote reference {n} in all correspondence."])
        if kind == "postcode":
            return rng.choice([f"Ship to {f.street_address()}, {f.postcode()} {f.city()}.", f"postcode: {f.postcode()}",
                               f"We only deliver to postcode {f.postcode()} and nearby."])
        if kind == "luhn":
            return rng.choice([f"Reference number {self.luhn_fail_16()}", f"serial={self.luhn_fail_16()}",
                               f"Tracking ID {self.luhn_fail_16()} (not yet scanned)", f"Membership no. {self.luhn_fail_16()}"])
        if kind == "bad_iban":
            return rng.choice([f"The reference {self.bad_iban(loc)} was rejected by the bank.", f"ref={self.bad_iban(loc)}",
                               f"Form field shows {self.bad_iban(loc)} (invalid check digits)."])
        if kind == "years":
            a = rng.randint(1960, 2015)
            return rng.choice([f"He worked there {a}-{a + rng.randint(1, 9)}.", f"Seasons {a}-{a + 1} and {a + 2}-{a + 3}.",
                               f"(published {a}–{a + rng.randint(1, 5)})"])
        if kind == "thousands":
            return rng.choice([f"The table has {rng.randint(1, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d} rows.",
                               f"Einwohner: {rng.randint(1, 9)}.{rng.randint(0, 999):03d}.{rng.randint(0, 999):03d}",
                               f"{rng.randint(1, 99)},{rng.randint(0, 999):03d} downloads last month"])
        if kind == "words":
            return rng.choice(["We use scikit-learn for the baseline, not sk-learn.", "The task-force meets on Tuesdays.",
                               "pip install scikit-learn", "Ask-me-anything session moved.",
                               "The desk-top and risk-free options are listed.", "tokens per second and key-value caches"])
        if kind == "masked":
            return rng.choice(["password: ********", "api_key: <redacted>", "password = ${DB_PASSWORD}",
                               "api_key: YOUR_API_KEY_HERE", "Forgot your password? Use the reset link.",
                               "The password must be at least 12 characters long.", "token=[REDACTED]",
                               "secret_key = os.environ['SECRET_KEY']"])
        return self.pg_sentence()

    def pg_sentence(self):
        """The next of the manual's sentences, so that none repeats within a set."""
        s = self.pg[self.pg_next % len(self.pg)]
        self.pg_next += 1
        return s

    # ---- lines -------------------------------------------------------------------------------------------------
    def value(self, kind, loc, sub=None):
        if kind == "email":
            return None, self.email(loc)
        if kind == "phone":
            return None, self.phone(loc)
        if kind == "payment_card":
            return None, self.card(loc)
        if kind == "iban":
            return None, self.iban(loc)
        sub = sub or self.secret_sub()
        return sub, self.secret_value(sub, loc)

    def clause(self, line, context, kind, loc, sub=None):
        """Appends one clause holding one span of kind (of secret format sub, if given)."""
        rng = self.rng
        sub, v = self.value(kind, loc, sub)
        self.stats["secret-" + sub if sub else kind] += 1
        if sub == "assignment":
            k = rng.choice(ASSIGN_KEYS)
            form = rng.choice(ASSIGN_FORMS).replace("{k}", k)
            if context in ("log", "config"):
                return line.fill(form, kind, v)
            pre, post = rng.choice(ASSIGN_PROSE).split("{a}")
            return line.add(pre).fill(form, kind, v).add(post)
        if sub == "pem":
            if context == "config":
                return line.fill(rng.choice(CONFIG["secret"]["pem"]), kind, v)
            return line.fill(rng.choice(["Here is the key for the build box:\n{v}\nPlease keep it safe.", "\n{v}\n",
                                         "key attached below\n{v}"]), kind, v)
        if context == "config":
            t = rng.choice(CONFIG["secret"][sub]) if kind == "secret" else rng.choice(CONFIG[kind])
        elif context == "log":
            t = rng.choice(LOG[kind])
        else:
            local = PROSE_LOCAL.get(loc, {}).get(kind)
            t = rng.choice(local) if local and rng.random() < 0.35 else rng.choice(PROSE[kind])
        t = t.replace("{bic}", self.fakers[loc].swift())
        return line.fill(t, kind, v)

    def frame(self, context, loc, clauses):
        """clauses: callables appending to a Line; returns the Line."""
        rng, f = self.rng, self.fakers[loc]
        line = Line()
        if context == "email":
            line.add(f"Subject: {rng.choice(['Re: your account', 'Invoice', 'Quick question', 'Update', 'Fwd: details'])}\n\n"
                     f"{rng.choice(['Hi', 'Hello', 'Dear'])} {f.first_name()},\n")
            for i, c in enumerate(clauses):
                if i:
                    line.add(" ")
                c(line)
            line.add(f"\n\n{rng.choice(['Best regards', 'Thanks', 'Cheers', 'Kind regards'])},\n{f.name()}")
        elif context == "chat":
            line.add(f"[{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}] {f.user_name()}: ")
            if rng.random() < 0.2:
                line.add(rng.choice(["👋 ", "🙂 ", "hey! ", "ok so ", "🔥 "]))
            for i, c in enumerate(clauses):
                if i:
                    line.add(" " if line.text[-1] in ".!?" else rng.choice([" ", " and ", " / ", ". "]))
                c(line)
            if rng.random() < 0.2:
                line.add(rng.choice([" 🙏", " thx", " :)", " 👍"]))
        elif context == "log":
            ts = f.date_time_between(start_date=datetime.datetime(2023, 1, 1), end_date=datetime.datetime(2026, 6, 30)).replace(microsecond=0).isoformat() + rng.choice(["Z", f".{rng.randint(0, 999):03d}Z", "+00:00", ""])
            line.add(f"{ts} {rng.choice(['INFO', 'WARN', 'ERROR', 'DEBUG'])} {rng.choice(['api', 'billing', 'auth', 'mailer', 'worker'])}"
                     f"[{rng.randint(100, 65000)}]: ")
            for i, c in enumerate(clauses):
                if i:
                    line.add(" ")
                c(line)
        elif context == "config":
            line.add(rng.choice(["# production settings\n", "[service]\n", "", "# .env\n"]))
            for i, c in enumerate(clauses):
                if i:
                    line.add("\n")
                c(line)
            if rng.random() < 0.5:
                line.add("\n" + rng.choice(["port = 5432", "timeout = 30s", "max_connections = 100", "log_level: info",
                                            "retries: 3", "shared_buffers = 128MB"]))
        else:  # ticket
            line.add(f"Ticket #{rng.randint(10000, 999999)} ({rng.choice(['low', 'normal', 'high', 'urgent'])})\n"
                     f"From: {f.name()}\n")
            for i, c in enumerate(clauses):
                if i:
                    line.add(" ")
                c(line)
        return line

    def draw_line(self, positive):
        rng = self.rng
        loc = rng.choice(list(LOCALES))
        context = rng.choice(["email", "chat", "log", "config", "ticket"])
        if positive:
            n = rng.choices([1, 2, 3], weights=[55, 30, 15])[0]
            kinds = rng.choices(KINDS, weights=[22, 22, 18, 16, 22], k=n)
            clauses = [lambda line, k=k: self.clause(line, context, k, loc) for k in kinds]
            for _ in range(rng.choices([0, 1], weights=[65, 35])[0]):
                neg = self.negative(loc)
                clauses.insert(rng.randint(0, len(clauses)), lambda line, s=neg: line.add(s))
        else:
            if rng.random() < 0.3:   # a sentence from the PostgreSQL manual on its own
                self.stats["neg-pg"] += 1
                return Line().add(self.pg_sentence())
            negs = [self.negative(loc) for _ in range(rng.choices([1, 2, 3], weights=[40, 40, 20])[0])]
            clauses = [lambda line, s=s: line.add(s) for s in negs]
        return self.frame(context, loc, clauses)

    def line(self, positive):
        for _ in range(50):
            line = self.draw_line(positive)
            if check_line(line.text, line.spans):
                return line
            self.stats["redrawn"] += 1
        raise RuntimeError("could not draw a clean line")


def outside(text, spans):
    """text with every span blanked out (same length)."""
    chars = list(text)
    for s in spans:
        for i in range(s["start"], s["end"]):
            chars[i] = "\x00"
    return "".join(chars)


def check_line(text, spans):
    """Spans are right, validated, and nothing positive-shaped lies outside them."""
    for s in spans:
        v = text[s["start"]:s["end"]]
        assert s["kind"] in KINDS and v == s.get("value", v), (s, v)
        if s["kind"] == "email":
            assert EMAIL_RE.match(v), v
        elif s["kind"] == "payment_card":
            assert luhn.is_valid(re.sub(r"[ -]", "", v)), v
        elif s["kind"] == "iban":
            assert iban.is_valid(v), v
        elif s["kind"] == "phone":
            assert any(phonenumbers.is_valid_number(phonenumbers.parse(v, r)) for r in LOCALES.values()), v
        elif s["kind"] == "secret":
            assert any(p.match(v) for p in SECRET_RES.values()), v
    rest = outside(text, spans)
    if "@" in rest or LEAK_SECRET.search(rest) or valid_ibans_in(rest):
        return False
    for m in LEAK_DIGITS.finditer(rest):
        d = re.sub(r"[ -]", "", m.group(0))
        if CARD_PREFIX.match(d) and luhn.is_valid(d):
            return False
    return True


class TextOf(html.parser.HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "tr", "td", "th", "pre", "dt", "dd", "h1", "h2", "h3", "h4", "table", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        if tag in self.BLOCKS:
            self.out.append("\x00")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")
        if tag in self.BLOCKS:
            self.out.append("\x00")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def pg_sentences(html_dir=PG_HTML):
    """Sentences with digits from the PostgreSQL manual, none with an e-mail address or a password-like word."""
    keep = set()
    for p in sorted(pathlib.Path(html_dir).glob("*.html")):
        t = TextOf()
        t.feed(p.read_text(encoding="utf-8", errors="replace"))
        for block in "".join(t.out).split("\x00"):
            block = " ".join(block.split())
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", block):
                if (40 <= len(s) <= 220 and re.search(r"\d", s) and s[0].isupper() and s[-1] in ".!?"
                        and not re.search(r"(?i)@|passw|secret|api.?key|token|BEGIN|PRIVATE", s) and check_line(s, [])):
                    keep.add(s)
    if not keep:
        sys.exit(f"no sentences under {html_dir} (apt-get install postgresql-doc-15)")
    # Sentences with config values, sizes, port numbers or longer numbers twice as likely.
    return sorted(keep), [2 if re.search(r"\d{3,}|\d+ ?(kB|MB|GB|ms|s)\b|port", s) else 1 for s in sorted(keep)]


def personal_data(seed, n_lines, pg, os_secrets=False):
    sentences, weights = pg
    # A weighted order without repeats (Efraimidis and Spirakis: key u^(1/w), largest first).
    r = random.Random(seed)
    keys = [r.random() ** (1 / w) for w in weights]
    ordered = [s for _, s in sorted(zip(keys, sentences), reverse=True)]
    g = Generator(seed, os_secrets, ordered)
    negatives = round(n_lines * 0.4)
    flags = [False] * negatives + [True] * (n_lines - negatives)
    g.rng.shuffle(flags)
    rows = []
    for positive in flags:
        line = g.line(positive)
        rows.append({"text": line.text, "spans": [{k: s[k] for k in ("kind", "start", "end")} for s in line.spans]})
    return rows, g


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    size = pathlib.Path(path).stat().st_size
    assert size < 1_000_000, (path, size)
    return size


def report_personal(path, rows, g):
    spans = collections.Counter(s["kind"] for r in rows for s in r["spans"])
    empty = sum(not r["spans"] for r in rows)
    print(f"{path}: {len(rows)} lines, {empty} with no span ({empty / len(rows):.0%}); spans "
          + ", ".join(f"{k} {spans[k]}" for k in KINDS), file=sys.stderr)
    print("  " + ", ".join(f"{k} {v}" for k, v in sorted(g.stats.items())), file=sys.stderr)
    rej = collections.Counter()
    for (loc, why), c in g.phone_rejects.items():
        rej[loc] += c
    print("  phone numbers from Faker dropped as not valid for the locale's region: "
          + ", ".join(f"{loc} {rej[loc]}" for loc in LOCALES), file=sys.stderr)


# ---- categories ----------------------------------------------------------------------------------------------------
CATEGORIES = {
    "games": "Games and game-related software: arcade, strategy, puzzle, board, card and role-playing games, game engines, "
             "emulators and the data files games need.",
    "science": "Software for scientific work: physics, chemistry, biology and bioinformatics, astronomy, geoscience, "
               "numerical simulation and the analysis and plotting of experimental data.",
    "sound": "Audio software: music players, sound and MIDI editors, synthesizers, audio codecs and converters, mixers, "
             "sound servers and plugins for recording and playback.",
}
# Sections that say how a package is built or packaged rather than what it is for; their packages would be
# negatives that are really games, science or sound software (python3-astropy is in python, libsdl2-mixer in libs).
NOT_TOPICS = {"libs", "libdevel", "oldlibs", "doc", "debug", "localization", "metapackages", "introspection", "python",
              "perl", "ruby", "haskell", "rust", "golang", "javascript", "java", "gnu-r", "ocaml", "lisp", "php",
              "cli-mono", "tasks", "translations", "zope", "tex"}
CAP = 600


def stanzas(text):
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def long_descriptions():
    """Description-md5 -> Description-en from apt's Translation-en indexes, where apt has fetched them."""
    out = {}
    for path in sorted(glob.glob("/var/lib/apt/lists/*_i18n_Translation-en*")):
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True, text=True, check=True).stdout
        for st in stanzas(text):
            if "Description-md5" in st and "Description-en" in st:
                out.setdefault(st["Description-md5"], st["Description-en"])
    return out


def description_text(desc):
    """First line, then the long description without its " ." paragraph separators, joined; at most CAP characters."""
    lines = desc.split("\n")
    short = lines[0].strip()
    body = [l.strip() for l in lines[1:] if l.strip() and l.strip() != "."]
    text = short if not body else short + (" " if short.endswith((".", ":", "!", "?")) else ". ") + " ".join(body)
    text = " ".join(text.split())
    if len(text) > CAP:
        text = text[:CAP].rsplit(" ", 1)[0]
    return text


def categories(seed, out):
    rng = random.Random(seed)
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    long = long_descriptions()
    seen, by_source, with_long = set(), collections.defaultdict(list), 0
    for st in stanzas(dump):
        name, section, desc = st.get("Package"), st.get("Section", ""), st.get("Description", "")
        if not name or not desc or name in seen:
            continue
        seen.add(name)
        section = section.split("/")[-1]     # contrib/games -> games
        if section in NOT_TOPICS:
            continue
        full = long.get(st.get("Description-md5", ""))
        with_long += full is not None
        text = description_text(full or desc)
        if re.search(r"(?i)\b(transitional|dummy) package|\bdebug(ging)? symbols", text):
            continue
        source = st.get("Source", name).split(" ")[0]
        by_source[source].append({"package": name, "section": section, "text": text})
    # One binary package per source package, no two packages with the same text.
    pool, texts = collections.defaultdict(list), set()
    for source in sorted(by_source):
        p = rng.choice(sorted(by_source[source], key=lambda x: x["package"]))
        if p["text"] in texts:
            continue
        texts.add(p["text"])
        pool[p["section"] if p["section"] in CATEGORIES else "other"].append(p)
    for k in pool:
        rng.shuffle(pool[k])
    print(f"categories: {len(seen)} packages, {with_long} with a long description; per source package: "
          + ", ".join(f"{k} {len(pool[k])}" for k in [*CATEGORIES, "other"]), file=sys.stderr)
    n_test = {c: 100 for c in CATEGORIES} | {"other": 300}
    n_train = {c: min(333, len(pool[c]) - 100) for c in CATEGORIES}
    n_train["other"] = 2000 - sum(n_train.values())
    test = [dict(p, labels=[p["section"]] if k != "other" else []) for k in pool for p in pool[k][:n_test[k]]]
    train = [dict(p, labels=[p["section"]] if k != "other" else []) for k in pool for p in pool[k][n_test[k]:n_test[k] + n_train[k]]]
    rng.shuffle(test)
    rng.shuffle(train)
    order = lambda r: {"text": r["text"], "labels": r["labels"], "section": r["section"], "package": r["package"]}
    # Keep the training file under 1 MB: drop lines from the end while it is larger.
    while sum(len(json.dumps(order(r), ensure_ascii=False).encode()) + 1 for r in train) >= 990_000:
        train.pop()
    policy = {"categories": []}
    for c, description in CATEGORIES.items():
        mine = [r for r in train if r["labels"] == [c] and len(r["text"]) >= 120]
        policy["categories"].append({"name": c, "description": description,
                                     "examples": [r["text"] for r in rng.sample(mine, 8)], "threshold": 0.5, "action": "flag"})
    with open(out / "categories-policy.json", "w", encoding="utf-8") as f:
        json.dump(policy, f, ensure_ascii=False, indent=2)
        f.write("\n")
    for name, rows in (("categories-test.jsonl", test), ("categories-train.jsonl", train)):
        size = write_jsonl(out / name, [order(r) for r in rows])
        labels = collections.Counter(r["labels"][0] if r["labels"] else "(none)" for r in rows)
        print(f"{out / name}: {len(rows)} lines, {size} bytes; " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())), file=sys.stderr)


def fixed_hash_seed():
    """Some Faker providers pick from sets, whose order follows str hashing: run again with a fixed hash seed."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})


def main():
    fixed_hash_seed()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", choices=["both", "dev", "test"], default="both", help="which personal-data set (dev uses seed + 1000)")
    ap.add_argument("--sets", nargs="+", choices=["personal-data", "categories"], default=["personal-data", "categories"])
    ap.add_argument("--lines", type=int, default=1500)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent / "data")
    ap.add_argument("--os-secrets", action="store_true", help="secret bodies from the secrets module (not reproducible)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if "personal-data" in args.sets:
        sentences, weights = pg_sentences()
        # Dev and test draw from disjoint halves of the manual's sentences.
        halves = {h: ([s for i, s in enumerate(sentences) if i % 2 == h], [w for i, w in enumerate(weights) if i % 2 == h]) for h in (0, 1)}
        for split in (["dev", "test"] if args.split == "both" else [args.split]):
            seed = args.seed + 1000 if split == "dev" else args.seed
            rows, g = personal_data(seed, args.lines, halves[split == "dev"], args.os_secrets)
            path = args.out / ("personal-data-dev.jsonl" if split == "dev" else "personal-data.jsonl")
            write_jsonl(path, rows)
            report_personal(path, rows, g)
    if "categories" in args.sets:
        categories(args.seed, args.out)


if __name__ == "__main__":
    main()
