#!/usr/bin/env python3
"""Every option of every `attend` subcommand, tried with the values a careless user gives.

The command tree comes from the binary itself (`attend --experimental-dump-help`), so a new subcommand or option is
covered the day it lands. Each leaf command gets its required arguments as paths that do not exist (with the first
suffix among none, .safetensors, .png, ... that its own validation accepts), then each option in turn one of: 0, -1,
nan, inf, 1e40, Int64.max, the empty string, and a word. A command that needs no input file runs with
ATTEND_VALIDATE_ONLY=1 (parse and validate, then stop), since it would otherwise start its whole job. Rules:

1. Never a signal or trap: the exit code is 0, 1 or 64, and a non-zero exit prints a message.
2. A numeric option (its default is a number) refuses nan, inf and 1e40 by name, before any file is read: the message
   names the option. So does -1, unless the option takes negative numbers (NEGATIVE_ALLOWED), and 0, unless zero means
   something (ZERO_ALLOWED): both lists are below, so that a new option has to be thought about.
3. Int64.max is refused by name, or accepted (the missing input then fails), never an overflow.

Usage: scripts/test-cli-options.py [path/to/attend] [--only 'gpt train'] [--jobs N]
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

# Options whose zero is a real setting: a seed, "off", "none", "no warmup", "greedy", "no blurred copies".
ZERO_ALLOWED = {
    "seed", "warmup", "dropout", "temperature", "weight-decay", "top-k", "min-p", "frequency-penalty",
    "presence-penalty", "length-penalty", "teacher-weight", "lm-weight", "overlap", "min-count", "sample",
    "negative", "port", "show", "answers", "image-hidden", "layer", "head", "min-confidence", "prompt-cache",
    "content-weight", "style-weight", "identity-weight", "alpha", "blurred",
}
# Options that take negative numbers: OpenAI's penalties (-2...2), a layer counted from the end, the exponent of
# beam search's length normalization.
NEGATIVE_ALLOWED = {"frequency-penalty", "presence-penalty", "layer", "length-penalty"}
SUFFIXES = ["", ".safetensors", ".png", ".gguf", ".txt", ".jsonl", ".tsv"]
# Commands whose validation wants more than placeholder paths: one of two optional inputs, a server URL.
EXTRA_BASE = {
    "bench safety": ["--personal-data", "{missing}-personal-data"],
    "bench stores": ["{missing}-index", "postgres://127.0.0.1:1/none"],
}


def leaves(command, path):
    subs = command.get("subcommands", [])
    if not subs:
        yield path, command
    for s in subs:
        yield from leaves(s, path + [s["commandName"]])


def is_number(text):
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("attend", nargs="?", default=".build/debug/attend")
    p.add_argument("--only", default=None)
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()
    a.attend = os.path.abspath(a.attend)
    tree = json.loads(subprocess.run([a.attend, "--experimental-dump-help"], capture_output=True, check=True).stdout)
    work = tempfile.mkdtemp(prefix="attend-options-")
    missing = os.path.join(work, "missing-input")
    cases = []
    bases = []
    short_options = set()

    def flag(path, name):
        return ("-" if (" ".join(path), name) in short_options else "--") + name

    for path, command in leaves(tree["command"], []):
        if path in (["help"],) or (a.only and " ".join(path) != a.only):
            continue
        required = [arg for arg in command.get("arguments", []) if not arg.get("isOptional", False) and arg["kind"] in ("positional", "option")]
        # A command that needs no input file would start its job for every accepted value: stop it after validation.
        validate_only = not required
        for suffix in SUFFIXES:
            base = [x.format(missing=missing) for x in EXTRA_BASE.get(" ".join(path), [])]
            for i, arg in enumerate(required):
                if " ".join(path) in EXTRA_BASE and arg["kind"] == "positional":
                    continue
                if arg["kind"] == "option":
                    name = arg["preferredName"]
                    base.append(("--" if name["kind"] == "long" else "-") + name["name"])
                if arg.get("allValues"):  # a choice: its first value
                    base.append(arg["allValues"][0])
                    continue
                # Distinct paths (an output may not be an input); two for a repeating argument.
                base += [f"{missing}-{i}{suffix}"] + ([f"{missing}-{i}b{suffix}"] if arg.get("isRepeating") else [])
            r = subprocess.run([a.attend] + path + base, capture_output=True, text=True, cwd=work,
                               env=dict(os.environ, HF_HUB_OFFLINE="1", ATTEND_VALIDATE_ONLY="1" if validate_only else "0"))
            if r.returncode != 64:
                break
        else:
            bases.append(f"attend {' '.join(path)}: no placeholder arguments pass its validation ({r.stderr.strip()[-200:]})")
        for arg in command.get("arguments", []):
            if arg["kind"] != "option":
                continue
            name = arg["preferredName"]["name"]
            # Short-only options (`-k`) take their value as the next argument.
            short = arg["preferredName"]["kind"] != "long"
            if short:
                short_options.add((" ".join(path), name))
            numeric_default = is_number(arg.get("defaultValue"))
            # A word and 7 tell whether an option without a default is numeric; one with a numeric default is.
            for value in ["0", "-1", "nan", "inf", "1e40", "9223372036854775807"] + ([] if numeric_default else ["", "word", "7"]):
                args = [x for x in base]
                # Replace a required option's placeholder rather than giving the option twice.
                if flag(path, name) in args:
                    i = args.index(flag(path, name))
                    del args[i:i + 2]
                given = [f"-{name}", value] if short else [f"--{name}={value}"]
                cases.append((path, name, value, numeric_default, validate_only, args + given))

    def run(case):
        path, name, value, _, validate_only, args = case
        try:
            r = subprocess.run([a.attend] + path + args, capture_output=True, text=True, timeout=30, cwd=work,
                               env=dict(os.environ, HF_HUB_OFFLINE="1", ATTEND_VALIDATE_ONLY="1" if validate_only else "0"))
        except subprocess.TimeoutExpired:
            return case, None, "ran for more than 30 s on a missing input"
        message = (r.stderr + r.stdout).strip()
        # The argument parser follows its error line with the usage, which names every option: only the error counts.
        error_line = next((line for line in r.stderr.splitlines() if line.strip()), "")
        if r.returncode not in (0, 1, 64):
            return case, error_line, f"exit {r.returncode}: {message[-300:]}"
        if r.returncode != 0 and not message:
            return case, error_line, f"exit {r.returncode} without a message"
        return case, (r.returncode, error_line), None

    failures = []
    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        for case, outcome, problem in pool.map(run, cases):
            outcomes[(" ".join(case[0]), case[1], case[2])] = outcome
            if problem:
                failures.append((case, problem))
    # Rule 2. An option is numeric when its default is a number, or (no default) when the parser refuses a word as
    # its value but takes 7.
    def parse_refused(outcome, value):
        return outcome is not None and outcome[0] == 64 and f"The value '{value}' is invalid" in outcome[1]
    numeric_options = set()
    for case in cases:
        path, name, value, numeric_default, _, _ = case
        key = " ".join(path)
        numeric = numeric_default or (parse_refused(outcomes.get((key, name, "word")), "word")
                                      and not parse_refused(outcomes.get((key, name, "7")), "7"))
        if numeric:
            numeric_options.add((key, name))
        must_refuse = numeric and (value in ("nan", "inf", "1e40")
                                   or (value == "-1" and name not in NEGATIVE_ALLOWED)
                                   or (value == "0" and name not in ZERO_ALLOWED))
        outcome = outcomes.get((key, name, value))
        if must_refuse and outcome is not None and (outcome[0] == 0 or flag(path, name) not in outcome[1]):
            failures.append((case, f"not refused by name (exit {outcome[0]}): {outcome[1][-200:]}"))
    commands = len({" ".join(c[0]) for c in cases})
    options = len({(" ".join(c[0]), c[1]) for c in cases})
    for (path, name, value, _, _, _), problem in failures:
        print(f"FAIL attend {' '.join(path)} {flag(path, name)}={value!r}: {problem}")
    for problem in bases:
        print(f"FAIL {problem}")
    print(f"{len(cases) - len(failures)} of {len(cases)} cases passed ({commands} commands, {options} options, {len(numeric_options)} of them numeric)")
    sys.exit(1 if failures or bases else 0)


if __name__ == "__main__":
    main()
