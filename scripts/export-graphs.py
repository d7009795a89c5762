"""Exports labelled graphs for `attend graph` into .cache/graphs/:

- karate.edges / karate.labels: Zachary's karate club (networkx; label = the club each member joined).
- packages.edges / packages.labels: Debian's own package metadata (`apt-cache dumpavail`): packages are
  nodes, Depends/Pre-Depends/Recommends are edges (version constraints dropped, every alternative kept,
  only packages that exist), the Section field (without its archive-area prefix) is the label.

    python3 scripts/export-graphs.py            # needs networkx (pip) and apt lists (apt-get update)
"""
import os
import re
import subprocess


def karate(out):
    import networkx as nx
    g = nx.karate_club_graph()
    with open(f"{out}/karate.edges", "w") as f:
        for a, b in g.edges():
            f.write(f"{a} {b}\n")
    with open(f"{out}/karate.labels", "w") as f:
        for n, data in g.nodes(data=True):
            f.write(f"{n} {data['club'].replace(' ', '_')}\n")


def packages(out):
    text = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    section, deps = {}, {}
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        name = fields.get("Package")
        if not name or name in section:
            continue
        section[name] = fields.get("Section", "unknown").split("/")[-1]
        targets = []
        for key in ("Pre-Depends", "Depends", "Recommends"):
            for clause in fields.get(key, "").split(","):
                for alt in clause.split("|"):
                    t = re.sub(r"[\s(:\[].*", "", alt.strip())
                    if t:
                        targets.append(t)
        deps[name] = targets
    edges = {(a, b) for a, ts in deps.items() for b in ts if b in section and b != a}
    used = {n for e in edges for n in e}
    with open(f"{out}/packages.edges", "w") as f:
        for a, b in sorted(edges):
            f.write(f"{a} {b}\n")
    with open(f"{out}/packages.labels", "w") as f:
        for n in sorted(used):
            f.write(f"{n} {section[n]}\n")
    print(f"packages: {len(used)} nodes, {len(edges)} edges, {len(set(section[n] for n in used))} sections")


if __name__ == "__main__":
    out = ".cache/graphs"
    os.makedirs(out, exist_ok=True)
    karate(out)
    packages(out)
