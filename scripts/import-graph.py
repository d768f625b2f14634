#!/usr/bin/env python3
"""Import circles between the top-level modules of each crate.

For every crate (a directory with Cargo.toml and src/), each file belongs to a top-level
module (src/foo.rs and src/foo/** are `foo`; lib.rs and main.rs are the root). An arrow
runs from a module to every other module it names through `crate::`, or through `super::`
from a top-level file. Circles are the strongly connected components of more than one
module. Prints them per crate; with --strict, exits 1 when there is any.

    python3 scripts/import-graph.py [--strict] [crate-dir ...]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super)::(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", re.S)
COMMENT = re.compile(r"//[^\n]*")


def crates(args):
    if args:
        return [Path(a).resolve() for a in args]
    found = []
    for toml in sorted(ROOT.glob("**/Cargo.toml")):
        if "target" in toml.parts or ".venv" in toml.parts or toml.parent == ROOT:
            continue
        if (toml.parent / "src").is_dir():
            found.append(toml.parent)
    return found


def module_of(src, file):
    rel = file.relative_to(src)
    if len(rel.parts) == 1:
        return None if rel.stem in ("lib", "main") else rel.stem
    return rel.parts[0]


def names(group):
    if group.startswith("{"):
        return [n.strip().split("::")[0] for n in group.strip("{}").split(",") if n.strip()]
    return [group]


def graph(crate):
    src = crate / "src"
    root = next((src / n for n in ("lib.rs", "main.rs") if (src / n).exists()), None)
    test_only = set(re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(\w+);", root.read_text())) if root else set()
    modules = {module_of(src, f) for f in src.rglob("*.rs")} - {None} - test_only
    edges = {m: set() for m in modules}
    for file in src.rglob("*.rs"):
        here = module_of(src, file)
        if here is None or here not in modules:
            continue
        top_level = len(file.relative_to(src).parts) == 1
        text = COMMENT.sub("", file.read_text())
        text = text.split("#[cfg(test)]")[0]
        for kind, group in PATH.findall(text):
            if kind == "super" and not top_level:
                continue
            for name in names(group):
                if name in modules and name != here:
                    edges[here].add(name)
    return edges


def circles(edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    strict = "--strict" in sys.argv[1:]
    total = 0
    for crate in crates(args):
        found = circles(graph(crate))
        total += len(found)
        for component in found:
            print(f"{crate.relative_to(ROOT)}: circle of {len(component)}: {' <-> '.join(component)}")
    if "--edges" in sys.argv[1:]:
        for crate in crates(args):
            edges = graph(crate)
            for component in circles(edges):
                for m in component:
                    print(f"  {m} -> {', '.join(sorted(e for e in edges[m] if e in component))}")
    print(f"import-graph: {total} circle(s)")
    return 1 if strict and total else 0


if __name__ == "__main__":
    sys.exit(main())
