#!/usr/bin/env bash
# Fails when a tracked file other than Markdown prose refers to the project's shared folder
# (the workspace folder beside the clone: its spec, data and reference): build, tests, scripts and the daemon
# read only what is in the repository. A mention inside a comment (after //, # or --) is
# allowed: it reads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z | python3 -c '
import re, sys
pattern = re.compile(r"(\.\./)+shared/|\bshared/(spec|data|reference)\b|/work/shared")
comment = re.compile(r"//|#|--")
found = 0
for path in sys.stdin.read().split("\0"):
    if not path or path.endswith(".md") or path == "scripts/check-self-contained.sh":
        continue
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        continue
    for number, line in enumerate(lines, 1):
        for match in pattern.finditer(line):
            if comment.search(line[:match.start()]):
                continue
            print(f"{path}:{number}: reaches outside the repository: {line.strip()}")
            found += 1
print(f"check-self-contained: {found} reference(s) outside the repository")
sys.exit(1 if found else 0)
'
