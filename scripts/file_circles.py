#!/usr/bin/env python3
"""Fails when two or more files of src/ import each other, directly or through a circle.

Usage: scripts/file_circles.py [SRC_DIR] (default src).

An import is any path `crate::a::b::…` or `super::…` (outside comments) that names an item of
another file; `mod x;` declarations are not imports. Each path resolves to the longest module
prefix that is a file (`src/a/b.rs` or `src/a/b/mod.rs`). Prints every circle found.
"""
import os
import re
import sys

ROOT = "src"
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{")


def module_of(path):
    """src/a/b.rs -> ['a', 'b']; src/a/mod.rs -> ['a']; src/lib.rs -> []."""
    for module, file in PATHED.items():
        if file == path:
            return list(module)
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_][A-Za-z0-9_]*)\s*;')
# Modules whose file a `#[path = "…"]` attribute names: module path -> file.
PATHED = {}


def file_of(module):
    if tuple(module) in PATHED:
        return PATHED[tuple(module)]
    for candidate in (os.path.join(ROOT, *module) + ".rs", os.path.join(ROOT, *module, "mod.rs")):
        if module and os.path.isfile(candidate):
            return candidate
    return os.path.join(ROOT, "lib.rs") if not module else None


def resolve(base, segments):
    """The file of the longest prefix of base+segments that is a file."""
    full = base + segments
    for n in range(len(full), len(base) - 1, -1):
        f = file_of(full[:n])
        if f:
            return f
    return None


def strip_comments(text):
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def imports(path):
    own = module_of(path)
    is_mod = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
    # `super` of src/a/b.rs is module a; of src/a/mod.rs it is the crate (module above a).
    parent = own[:-1] if not is_mod else own[:-1]
    text = strip_comments(open(path, encoding="utf-8").read())
    found = set()
    for root, rest in PATH.findall(text):
        segments = rest.split("::")[1:]
        base = [] if root == "crate" else parent
        target = resolve(base, segments)
        if target and target != path:
            found.add(target)
    # `use crate::a::{b, c::d}`: the grouped names extend the prefix.
    for match in USE_GROUP.finditer(text):
        root, rest = match.group(1), match.group(2)
        base = ([] if root == "crate" else parent) + [s for s in rest.split("::") if s]
        depth, i, start = 1, match.end(), match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        for name in re.findall(r"(?:^|[,{\s])([A-Za-z_][A-Za-z0-9_]*)(?:::|\s*[,}]|\s+as\b)", text[start:i]):
            target = resolve(base, [name])
            if target and target != path:
                found.add(target)
    return found


def main():
    global ROOT
    if len(sys.argv) > 1:
        ROOT = sys.argv[1]
    files = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(ROOT) for f in fs if f.endswith(".rs")
    )
    for f in files:
        for rel, name in PATH_ATTR.findall(open(f, encoding="utf-8").read()):
            PATHED[tuple(module_of(f) + [name])] = os.path.normpath(
                os.path.join(os.path.dirname(f), rel)
            )
    graph = {f: imports(f) for f in files}
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for f in files:
        if f not in index:
            visit(f)
    for scc in sccs:
        print("layering: files import each other (a circle): " + " <-> ".join(scc))
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
