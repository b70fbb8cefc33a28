#!/usr/bin/env bash
# Run as root: builds the workspace's test binaries as scripts/test.sh does
# (so after it nothing is rebuilt) and runs each, except the end-to-end
# crate's, as a normal user (default nobody), from its package
# folder as `cargo test` does, with a scratch HOME and TMPDIR. Every binary
# must pass; the tests that need root say SKIPPED on stderr (counted here).
# With NETAUTH_E2E_REQUIRE_ROOT=1 in the environment each skip is a failure
# instead, so the binaries that skip must fail.
#
# Left out: tests/testserver's interop test (it makes a venv under target/,
# which the normal user cannot write, and needs PyPI). The checkout and
# target/ must be readable by the user (not under /root).
set -euo pipefail
cd "$(dirname "$0")/../.."
user=${1:-nobody}
group=$(id -gn "$user")
scratch=$(mktemp -d /tmp/netauth-as-user.XXXXXX)
chmod 1777 "$scratch"
trap 'rm -rf "$scratch"' EXIT

cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, os, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        if m["target"]["name"] != "interop" and not m["manifest_path"].endswith("tests/e2e/Cargo.toml"):
            print(os.path.dirname(m["manifest_path"]), m["executable"])
' >"$scratch/binaries"

failed=0
skipped=0
while read -r dir bin; do
    name=$(basename "$bin")
    set +e
    (cd "$dir" && env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch" TMPDIR="$scratch" \
        ${NETAUTH_E2E_REQUIRE_ROOT:+NETAUTH_E2E_REQUIRE_ROOT=1} \
        setpriv --reuid="$user" --regid="$group" --clear-groups "$bin" \
        >"$scratch/$name.out" 2>"$scratch/$name.err" </dev/null)
    rc=$?
    set -e
    n=$(grep -c '^SKIPPED' "$scratch/$name.err" || true)
    skipped=$((skipped + n))
    echo "exit $rc, $n skipped: ${dir#"$PWD"/} $name"
    if [ "$rc" -ne 0 ]; then
        failed=$((failed + 1))
        grep -A3 '^---- ' "$scratch/$name.out" | head -40 >&2 || true
    fi
done <"$scratch/binaries"
echo "as $user: $failed binaries failed, $skipped tests skipped for lack of root"
[ "$failed" -eq 0 ]
