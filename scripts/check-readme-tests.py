#!/usr/bin/env python3
"""Every claim in README.md's "Correctness" section points to a test that exists.

Each bullet must name at least one test: a test class (`GradientCheckTests`), a test function (`Class.testName`,
`testName`, or a Python `test_name`), or a script the test command runs. Every such name, and every reference script
(`make_*.py`) or other file it names, must exist under Tests/ or scripts/. A renamed or deleted test then fails here
instead of leaving a claim that points at nothing.

    python3 scripts/check-readme-tests.py
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def section(text, title):
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def main():
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    body = section(readme, "Correctness")
    bullets = re.split(r"\n- ", body.split("\n- ", 1)[1])
    swift = {}
    for path in glob.glob(os.path.join(ROOT, "Tests", "*", "*.swift")):
        swift[path] = open(path, encoding="utf-8").read()
    python = "".join(open(p, encoding="utf-8").read() for p in glob.glob(os.path.join(ROOT, "Tests", "server", "*.py")))
    classes = {m for text in swift.values() for m in re.findall(r"class (\w+Tests)\b", text)}
    classes |= {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "Tests", "*Tests"))}   # test targets
    functions = {m for text in swift.values() for m in re.findall(r"func (test\w+)\(", text)}
    methods = {f"{c}.{f}" for text in swift.values()
               for c, rest in re.findall(r"class (\w+Tests)\b[^{]*\{(.*?)(?=\nfinal class |\nclass |\Z)", text, re.S)
               for f in re.findall(r"func (test\w+)\(", rest)}
    python_tests = set(re.findall(r"def (test_\w+)\(", python))
    scripts = {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "scripts", "**", "*"), recursive=True)}
    scripts |= {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "Benchmarks", "*"))}
    scripts |= {os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "Tests", "server", "*"))}
    problems = []
    for number, bullet in enumerate(bullets, 1):
        names = re.findall(r"`([^`]+)`", bullet)
        found = 0
        for name in names:
            name = name.split("(")[0].strip()
            base = os.path.basename(name)
            if re.fullmatch(r"\w+Tests\.test\w+", name):
                ok = name in methods
            elif re.fullmatch(r"test[A-Z]\w+", name):
                ok = name in functions
            elif re.fullmatch(r"\w+Tests", name):
                ok = name in classes
            elif re.fullmatch(r"test_\w+", name):
                ok = name in python_tests
            elif re.fullmatch(r"[\w./-]+\.(py|sh)", name):
                ok = base in scripts
            else:
                continue
            if not ok:
                problems.append(f"bullet {number}: `{name}` is not a test or script in this repository")
            elif not name.startswith("make_"):
                found += 1
        if not found:
            problems.append(f"bullet {number} names no test: {bullet[:100]!r}")
    for p in problems:
        print("FAIL", p)
    print(f"{len(bullets)} claims in the README's Correctness section, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
