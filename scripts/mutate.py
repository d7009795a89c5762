#!/usr/bin/env python3
"""The mutation check: small deliberate bugs applied to Sources/ one at a time, each followed by the tests that should
catch it. A mutation the tests let through ("survived") is a claim no test checks.

The list is scripts/mutations.json: {"id", "area", "file", "old", "new", "tests", "what"} per mutation, `old` occurring
exactly once in `file`, `tests` an XCTest filter. Each run: apply, `swift build --build-tests` (incremental), run the
filter, restore the file (also on Ctrl-C). The tests of every filter are first run once unmutated; they must pass.
Not part of the test command (each mutation rebuilds): a benchmark-like job whose report goes to docs/MUTATIONS.md.

Usage: scripts/mutate.py [--only ID[,ID...]] [--report docs/MUTATIONS.md]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(args, timeout):
    try:
        r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired:
        return 124, "timed out"


def build():
    return sh(["swift", "build", "--build-tests"], 1800)


def test(filter_):
    return sh(["swift", "test", "--skip-build", "--filter", filter_], 1200)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", default=None)
    p.add_argument("--report", default=os.path.join(ROOT, "docs/MUTATIONS.md"))
    p.add_argument("--list", default=os.path.join(ROOT, "scripts/mutations.json"))
    p.add_argument("--no-report", action="store_true")
    a = p.parse_args()
    mutations = json.load(open(a.list))
    listed = len(mutations)
    if a.only:
        wanted = set(a.only.split(","))
        mutations = [m for m in mutations if m["id"] in wanted]
    for m in mutations:
        text = open(os.path.join(ROOT, m["file"])).read()
        if text.count(m["old"]) != 1:
            sys.exit(f"{m['id']}: {m['file']} holds the text to mutate {text.count(m['old'])} times, not once")
    code, out = build()
    if code != 0:
        sys.exit("the unmutated build fails:\n" + out[-2000:])
    combined = "|".join(f"({m['tests']})" for m in mutations)
    code, out = test(combined)
    if code != 0:
        sys.exit("the unmutated tests fail:\n" + out[-3000:])
    results = []
    for i, m in enumerate(mutations):
        path = os.path.join(ROOT, m["file"])
        original = open(path).read()
        started = time.time()
        try:
            open(path, "w").write(original.replace(m["old"], m["new"], 1))
            code, out = build()
            if code != 0:
                result, detail = "does not compile", next((l for l in out.splitlines() if "error:" in l), "")[:160]
            else:
                code, out = test(m["tests"])
                failed = [l for l in out.splitlines() if " error: " in l or "failed (" in l]
                if code == 0:
                    result, detail = "survived", ""
                else:
                    result = "killed"
                    detail = (failed[0].split(" : ")[-1] if failed else ("timed out" if code == 124 else f"exit {code}"))[:160]
        finally:
            open(path, "w").write(original)
        seconds = time.time() - started
        results.append((m, result, detail, seconds))
        print(f"[{i + 1}/{len(mutations)}] {m['id']}: {result} ({seconds:.0f} s) {detail}", flush=True)
    build()  # leave the tree built unmutated
    killed = sum(r == "killed" for _, r, _, _ in results)
    survived = [m for m, r, _, _ in results if r == "survived"]
    broken = sum(r == "does not compile" for _, r, _, _ in results)
    lines = [
        "# Mutation check",
        "",
        f"`python3 scripts/mutate.py{' --only ...' if a.only else ''}` on {datetime.date.today().isoformat()}: {len(results)} of the {listed} mutations in `scripts/mutations.json`, each",
        "applied alone to `Sources/`, the package rebuilt, and the tests named beside it run. **Killed** means a test failed;",
        "**survived** means every test passed with the bug in place. The unmutated tests pass first.",
        "",
        f"Killed {killed}, survived {len(survived)}, did not compile {broken}.",
        "",
        "| id | area | the bug | tests run | result | first failure |",
        "|---|---|---|---|---|---|",
    ]
    for m, result, detail, _ in results:
        cell = detail.replace("|", "\\|")
        lines.append(f"| {m['id']} | {m['area']} | {m['what']} | `{m['tests']}` | **{result}** | {cell} |")
    if not a.no_report:
        open(a.report, "w").write("\n".join(lines) + "\n")
        print(f"wrote {a.report}")
    print(f"killed {killed}, survived {len(survived)}, did not compile {broken}" + (": " + ", ".join(m["id"] for m in survived) if survived else ""))


if __name__ == "__main__":
    main()
