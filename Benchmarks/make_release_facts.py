"""The facts of the PostgreSQL 15 minor-release pages (release-15-N.html in Debian's postgresql-doc-15), read with
regular expressions from the HTML, for the task-oriented-values benchmark (`attend bench values`):
release-facts.tsv holds page, version, release date and the version whose fixes the release contains; the questions
file asks two questions per page (its date, and what it fixes from).

    python3 Benchmarks/make_release_facts.py /usr/share/doc/postgresql-doc-15/html Benchmarks/data
"""
import pathlib
import re
import sys

html, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
facts = []
for page in sorted(html.glob("release-15-*.html"), key=lambda p: int(p.stem.split("-")[-1])):
    text = page.read_text(encoding="utf-8")
    version = "15." + page.stem.split("-")[-1]
    date = re.search(r"Release date:\s*</strong>\s*(\d{4}-\d{2}-\d{2})", text).group(1)
    fixes = re.search(r"fixes from\s+(?:<span[^>]*>)?\s*(?:PostgreSQL\s+)?(\d+\.\d+)", text).group(1)
    facts.append((page.name, version, date, fixes))
with open(out / "release-facts.tsv", "w") as f:
    f.write("# page\tversion\trelease_date\tfixes_from (from Benchmarks/make_release_facts.py)\n")
    for row in facts:
        f.write("\t".join(row) + "\n")
with open(out / "release-questions.tsv", "w") as f:
    f.write("# question<TAB>the text a right answer contains<TAB>the page that says it (from Benchmarks/make_release_facts.py)\n")
    for page, version, date, fixes in facts:
        f.write(f"When was PostgreSQL {version} released?\t{date}\t{page}\n")
        f.write(f"PostgreSQL {version} contains fixes from which earlier release?\t{fixes}\t{page}\n")
print(len(facts), "pages")
