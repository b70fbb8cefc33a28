#!/usr/bin/env bash
# Builds the netauth-unix packages:
#   target/debian/netauth-unix_<version>-1_amd64.deb      (cargo-deb)
#   target/generate-rpm/netauth-unix-<version>-1.x86_64.rpm (cargo-generate-rpm)
# from the metadata in netauth-unix/Cargo.toml and the files in packaging/.
#
#   bash packaging/build.sh            # both
#   bash packaging/build.sh deb        # only the .deb
#   bash packaging/build.sh rpm        # only the .rpm
#
# Installs cargo-deb and cargo-generate-rpm (both MIT-licensed build tools;
# nothing of them ends up in the packages) with `cargo install --locked`
# when they are missing. Runs on Debian/Ubuntu x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
case "$what" in all|deb|rpm) ;; *) echo "usage: $0 [all|deb|rpm]" >&2; exit 2 ;; esac

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1

ensure_tool() { # subcommand crate version
    if ! cargo "$1" --version >/dev/null 2>&1; then
        echo "build.sh: installing $2 $3" >&2
        cargo install --locked "$2" --version "$3"
    fi
}
[ "$what" = rpm ] || ensure_tool deb cargo-deb "$CARGO_DEB_VERSION"
[ "$what" = deb ] || ensure_tool generate-rpm cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

# The package metadata names the amd64 paths (/lib/x86_64-linux-gnu,
# /usr/lib64); refuse to put a build for another machine there.
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || uname -m)"
if [ "$multiarch" != x86_64-linux-gnu ]; then
    echo "build.sh: the package metadata is for x86_64-linux-gnu, this host is $multiarch" >&2
    exit 1
fi

cargo build --release --locked -p nss_netauth -p pam_netauth -p netauth-unix
# The .rpm is for RHEL 9 (glibc 2.34). Both modules link GCC's unwinder
# in, which needs glibc 2.35 (see build-support/unwinder.rs); the .rpm's
# keep the shared libgcc_s, built in a target folder of their own.
if [ "$what" != deb ]; then
    NETAUTH_UNWINDER=libgcc_s cargo build --release --locked -p nss_netauth -p pam_netauth \
        --target-dir target/rpm-libgcc_s
fi

# Generated files the packages ship: gzipped man pages for the RPM (cargo-deb
# compresses its own) and the copyright file with the linked crates' licences.
gen=target/packaging
mkdir -p "$gen/bin"
# Stripped copies of the three ELF files (cargo-deb strips only what the
# packaged crate itself builds, cargo-generate-rpm strips nothing). The
# modules keep their dynamic symbol table, which is all PAM and glibc use.
for elf in netauth-unix libnss_netauth.so libpam_netauth.so; do
    strip --strip-unneeded -o "$gen/bin/$elf" "target/release/$elf"
done
if [ "$what" != deb ]; then
    mkdir -p "$gen/bin-rpm"
    for elf in libnss_netauth.so libpam_netauth.so; do
        strip --strip-unneeded -o "$gen/bin-rpm/$elf" "target/rpm-libgcc_s/release/$elf"
    done
fi
for page in netauth-unix.8 pam_netauth.8; do
    gzip -9 -n -c "packaging/common/$page" > "$gen/$page.gz"
done
# Proc macros run at build time only and are not linked in.
cargo tree --locked -e normal,no-proc-macro -p netauth-unix -p nss_netauth -p pam_netauth \
    --prefix none -f '{p} {l}' \
    | sed -E -e 's# \(/[^)]*\)##' -e 's/ \(\*\)$//' \
    | grep -v -E '^$|^(netauth-|nss_netauth|pam_netauth)' \
    | sort -u | sed 's/^/ /' >"$gen/linked-crates"
sed -e "/^@LINKED_CRATES@\$/{r $gen/linked-crates" -e 'd}' packaging/common/copyright.in >"$gen/copyright"

if [ "$what" != rpm ]; then
    cargo deb -p netauth-unix --no-build --locked
fi
if [ "$what" != deb ]; then
    cargo generate-rpm -p netauth-unix
fi

echo "build.sh: packages:"
[ "$what" = rpm ] || ls -1 target/debian/netauth-unix_*.deb
[ "$what" = deb ] || ls -1 target/generate-rpm/netauth-unix-*.rpm
