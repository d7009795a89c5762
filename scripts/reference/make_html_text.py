#!/usr/bin/env python3
"""Reference for Attend's HTML reader: Python's own html.parser (an independent tokenizer and entity decoder) with
the same reading rules (skip script/style/nav and DocBook's navheader/navfooter; h1-h6 start sections anchored by
the heading's id or the last id opened before it; the title from <title>). Writes, per page, the title and each
section's heading, anchor and words, which Attend's sections must equal word for word.

Usage: python3 scripts/reference/make_html_text.py Tests/AttendKnowledgeTests/Fixtures/pg > .../html_text.json
"""
import json, os, sys
from html.parser import HTMLParser

SKIPPED = {"script", "style", "nav", "noscript", "template", "svg"}
SKIPPED_CLASSES = {"navheader", "navfooter"}
BLOCKS = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "pre", "dt", "dd", "dl", "blockquote", "section", "article",
          "h1", "h2", "h3", "h4", "h5", "h6", "hr", "td", "th", "caption", "figure", "body", "html"}
VOID = {"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source", "param", "embed", "track"}

class Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title = ""; self.in_title = False
        self.sections = []; self.heading = ""; self.anchor = None; self.words = []
        self.skip = None; self.depth = 0; self.pending = None; self.in_heading = None; self.heading_words = []

    def flush(self):
        if self.words or self.heading:
            self.sections.append({"heading": self.heading, "anchor": self.anchor, "words": self.words})
        self.words = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in BLOCKS and not self.skip: self.glue = False
        if self.skip:
            if tag == self.skip and tag not in VOID: self.depth += 1
            return
        if "id" in a: self.pending = a["id"]
        elif tag == "a" and "name" in a: self.pending = a["name"]
        classes = set((a.get("class") or "").split())
        if tag in SKIPPED or classes & SKIPPED_CLASSES:
            if tag not in VOID: self.skip, self.depth = tag, 1
            return
        if tag == "title": self.in_title = True
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.flush(); self.in_heading = tag; self.heading_words = []
            self.anchor = a.get("id") or self.pending

    def handle_endtag(self, tag):
        if tag in BLOCKS and not self.skip: self.glue = False
        if self.skip:
            if tag == self.skip:
                self.depth -= 1
                if self.depth == 0: self.skip = None
            return
        if tag == "title": self.in_title = False
        elif tag == self.in_heading:
            self.heading = " ".join(self.heading_words); self.in_heading = None
            if not self.title and tag == "h1": self.title = self.heading

    def handle_data(self, data):
        if self.skip: return
        # Adjacent text runs join without a space (inline tags split words only where the text has spaces).
        target = self.heading_words if self.in_heading else self.words
        if self.in_title:
            self.title = (self.title + data); return
        parts = data.replace("\u00a0", " ").split()
        if not parts: 
            self.glue = False; return
        if target and not data[:1].isspace() and getattr(self, "glue", False):
            target[-1] += parts[0]; parts = parts[1:]
        target.extend(parts)
        self.glue = not data[-1:].isspace()

def read(path):
    r = Reader()
    r.feed(open(path, encoding="utf-8").read()); r.close(); r.flush()
    return {"title": " ".join(r.title.split()), "sections": r.sections}

folder = sys.argv[1]
out = {name: read(os.path.join(folder, name)) for name in sorted(os.listdir(folder)) if name.endswith(".html")}
json.dump(out, sys.stdout, indent=0, ensure_ascii=False)
