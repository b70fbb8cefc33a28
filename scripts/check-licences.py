#!/usr/bin/env python3
"""Fails if any crate in the build graph has a licence we cannot ship in a
GPL-3.0-or-later project. Reads `cargo metadata`; no network beyond what
cargo already fetched."""
import json
import re
import subprocess
import sys

# Licences compatible with distributing the whole as GPL-3.0-or-later.
ALLOWED = {
    "MIT", "MIT-0", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause",
    "BSD-3-Clause", "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016", "BSL-1.0",
    "MPL-2.0", "CC0-1.0", "Unlicense", "0BSD", "CDLA-Permissive-2.0",
    "GPL-3.0", "GPL-3.0-only", "GPL-3.0-or-later", "LGPL-2.1-or-later",
    "LGPL-3.0", "LGPL-3.0-or-later",
}


def satisfiable(expr: str) -> bool:
    """Evaluates an SPDX expression: OR needs one side allowed, AND both."""
    expr = expr.replace("/", " OR ")  # old-style "MIT/Apache-2.0"
    tokens = re.findall(r"\(|\)|AND|OR|WITH|[^\s()]+", expr)
    pos = 0

    def atom():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            val = disjunction()
            pos += 1  # ")"
            return val
        if pos < len(tokens) and tokens[pos] == "WITH":
            exc = tokens[pos + 1]
            pos += 2
            return f"{tok} WITH {exc}" in ALLOWED or tok in ALLOWED
        return tok in ALLOWED

    def conjunction():
        nonlocal pos
        val = atom()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            val = atom() and val
        return val

    def disjunction():
        nonlocal pos
        val = conjunction()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            val = conjunction() or val
        return val

    return disjunction()


def main() -> int:
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--locked"]))
    workspace = set(meta["workspace_members"])
    bad = []
    for pkg in meta["packages"]:
        if pkg["id"] in workspace:
            if pkg.get("license") != "GPL-3.0-or-later":
                bad.append(f"{pkg['name']}: workspace crate must be GPL-3.0-or-later")
            continue
        lic = pkg.get("license")
        if not lic:
            bad.append(f"{pkg['name']} {pkg['version']}: no SPDX licence field")
        elif not satisfiable(lic):
            bad.append(f"{pkg['name']} {pkg['version']}: {lic}")
    for line in bad:
        print("licence not allowed:", line)
    print(f"licence check: {len(meta['packages'])} crates, {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
