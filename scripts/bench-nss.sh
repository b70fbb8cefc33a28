#!/usr/bin/env bash
# NSS benchmark: nss_netauth vs nss_files vs libnss-cache at 100,000 users
# and 10,000 groups, through glibc in private mount namespaces (needs root
# and the libnss-cache package). Prints the markdown table of
# docs/benchmarks.md ("NSS lookups"). Extra arguments go to nss_bench,
# e.g. `--users 20000 --groups 2000 --budget-ms 500` for a quick look.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "bench-nss: run as root (it mounts inside private mount namespaces)" >&2
    exit 1
fi
if [ ! -e /usr/lib/x86_64-linux-gnu/libnss_cache.so.2 ] && ! ldconfig -p | grep -q libnss_cache.so.2; then
    echo "bench-nss: libnss-cache is not installed (apt-get install libnss-cache)" >&2
    exit 1
fi

# A target folder of its own: the module is built alone (`-p nss_netauth`,
# over netauth-cache alone, exactly as it ships), and no
# other build can replace it while the benchmark runs.
target="${CARGO_TARGET_DIR:-$PWD/target}/nss-bench"
cargo build --quiet --release -p nss_netauth --target-dir "$target"
cargo build --quiet --release -p netauth-e2e --bin nss_bench --target-dir "$target"

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), \
$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); \
kernel $(uname -r); $(ldd --version | head -1); \
libnss-cache $(dpkg-query -W -f '${Version}' libnss-cache 2>/dev/null || echo '?'); \
clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo '?')."
echo
exec "$target/release/nss_bench" --module "$target/release/libnss_netauth.so" "$@"
