#!/usr/bin/env python3
"""Reads scripts/mutants.txt and applies one mutant to a copy of the sources.

    mutants.py list FILE            one line per mutant: id, tab, path, tab, equivalent reason or ""
    mutants.py slow FILE            the ids of the mutants marked slow, one a line
    mutants.py apply FILE ID ROOT   rewrites ROOT/<path>; exit 3 when the snippet is stale
    mutants.py check FILE ID ROOT   the same test, writing nothing
    mutants.py sync SRC DST DIR...  makes DST/DIR equal to SRC/DIR, rewriting only files that differ
                                    (so an incremental build recompiles only what changed)
"""
import filecmp
import os
import shutil
import sys


def sync(source, destination, folders):
    for folder in folders:
        src_root, dst_root = os.path.join(source, folder), os.path.join(destination, folder)
        wanted = set()
        for directory, _, files in os.walk(src_root):
            relative = os.path.relpath(directory, src_root)
            os.makedirs(os.path.join(dst_root, relative), exist_ok=True)
            for name in files:
                wanted.add(os.path.normpath(os.path.join(relative, name)))
                src, dst = os.path.join(directory, name), os.path.join(dst_root, relative, name)
                if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
                    shutil.copyfile(src, dst)
        for directory, _, files in os.walk(dst_root):
            for name in files:
                path = os.path.join(directory, name)
                if os.path.normpath(os.path.relpath(path, dst_root)) not in wanted:
                    os.remove(path)


def parse(path):
    mutants, current = [], None
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n")
            if line.startswith("[") and "]" in line:
                ident, _, file = line[1:].partition("]")
                current = {"id": ident.strip(), "file": file.strip(), "old": None, "new": None,
                           "equivalent": "", "slow": "", "line": number}
                mutants.append(current)
            elif current is None or not line.strip() or line.startswith("#"):
                continue
            elif line.startswith("- "):
                current["old"] = line[2:].replace("\\n", "\n")
            elif line.startswith("+"):
                current["new"] = line[2:].replace("\\n", "\n")
            elif line.startswith("= equivalent:"):
                current["equivalent"] = line[len("= equivalent:"):].strip()
            elif line.startswith("~ slow:"):
                current["slow"] = line[len("~ slow:"):].strip()
            else:
                sys.exit(f"{path}:{number}: unexpected line: {line}")
    ids = [m["id"] for m in mutants]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        sys.exit(f"{path}: duplicate ids {sorted(duplicates)}")
    for m in mutants:
        if not m["old"] or m["new"] is None:
            sys.exit(f"{path}:{m['line']}: mutant {m['id']} needs a '- ' and a '+' line")
    return mutants


def main():
    command = sys.argv[1]
    if command == "sync":
        sync(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    listing = sys.argv[2]
    mutants = parse(listing)
    if command == "list":
        for m in mutants:
            print(f"{m['id']}\t{m['file']}\t{m['equivalent']}")
        return
    if command == "slow":
        for m in mutants:
            if m["slow"]:
                print(m["id"])
        return
    if command in ("apply", "check"):
        ident, root = sys.argv[3], sys.argv[4]
        mutant = next((m for m in mutants if m["id"] == ident), None)
        if mutant is None:
            sys.exit(f"no mutant {ident}")
        target = f"{root}/{mutant['file']}"
        try:
            with open(target, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            print(f"{ident}: {mutant['file']} is gone", file=sys.stderr)
            sys.exit(3)
        found = text.count(mutant["old"])
        if found != 1:
            print(f"{ident}: snippet found {found} times in {mutant['file']}", file=sys.stderr)
            sys.exit(3)
        if command == "check":
            return
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text.replace(mutant["old"], mutant["new"]))
        return
    sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
