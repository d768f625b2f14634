#!/usr/bin/env python3
"""Fails when code, scripts or build files refer to a path outside the repository.

A clone with nothing beside it must build and pass its tests, so every relative path in a
tracked file has to resolve inside the repository. Paths are resolved the way the file's
tool resolves them: Rust `include_str!`/`include_bytes!` from the source file's folder,
`env!("CARGO_MANIFEST_DIR")` paths from the crate's folder, scripts from their own folder
and the Makefile from the repository root.

    scripts/check-self-contained.py [ROOT]
"""

import os
import re
import subprocess
import sys

CHECKED = re.compile(r"(\.rs|\.sh|\.py|\.toml|\.ya?ml|\.json|Makefile|/run)$")
# A run of `../` followed by the rest of a path, inside code or a string.
RELATIVE = re.compile(r"((?:\.\./)+)([\w.\-/{}]*)")
# A mention of a neighbouring folder by name, wherever it is resolved from.
NEIGHBOUR = re.compile(r"(?<![\w/.-])(?:\.\./)+shared\b|\bshared/(?:samples|spec|contracts|notes)\b")


def tracked_files(root):
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True, text=True,
    ).stdout
    return [line for line in out.splitlines() if CHECKED.search(line)]


def crate_dir(root, path):
    """The nearest folder at or above `path` holding a Cargo.toml."""
    folder = os.path.dirname(path)
    while True:
        if os.path.exists(os.path.join(root, folder, "Cargo.toml")):
            return folder
        if not folder:
            return ""
        folder = os.path.dirname(folder)


def base_for(root, path, line):
    """The folder a relative path on `line` of `path` is resolved from."""
    if path.endswith(".rs") and "CARGO_MANIFEST_DIR" in line:
        return crate_dir(root, path)
    return os.path.dirname(path)


def escapes(root, base, relative):
    target = os.path.normpath(os.path.join(root, base, relative))
    return os.path.relpath(target, root).startswith("..")


def problems(root):
    found = []
    for path in tracked_files(root):
        try:
            with open(os.path.join(root, path), encoding="utf-8") as f:
                lines = f.readlines()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for number, line in enumerate(lines, 1):
            where = f"{path}:{number}"
            if NEIGHBOUR.search(line):
                found.append(f"{where}: names a folder beside the repository: {line.strip()}")
                continue
            base = base_for(root, path, line)
            for ups, rest in RELATIVE.findall(line):
                if escapes(root, base, ups + rest.split("{")[0]):
                    found.append(f"{where}: {ups}{rest} leaves the repository: {line.strip()}")
    return found


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    found = problems(root)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"self-contained: {len(found)} reference(s) outside the repository", file=sys.stderr)
        return 1
    print("self-contained: every path in code and scripts stays inside the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
