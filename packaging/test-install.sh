#!/usr/bin/env bash
# Installs the netauth-unix .deb into an isolated Debian root and proves it
# works there (NSS, PAM, home directories, ssh-keys as sshd runs it, the sshd
# drop-in, the AppArmor addition, systemd-analyze verify of the units), then
# that removing it puts the host configuration back; checks the .rpm's file
# list and scriptlets.
#
#   bash packaging/test-install.sh [DEB [RPM]]
#
# Default packages: the newest in target/debian/ and target/generate-rpm/
# (make them with `bash packaging/build.sh`). Needs root, unshare, overlayfs,
# pamtester, rpm, sshd (openssh-server), systemd-analyze (systemd),
# apparmor_parser (apparmor) and sudo: scripts/setup.sh installs them.
#
# Isolation: the script re-runs itself in a private mount namespace and
# builds the root there as an overlay: the host's / read-only below, a tmpfs
# above. Every write (dpkg database, /etc, /var/lib/netauth) lands in the
# tmpfs and disappears with the namespace; the host is never modified. The
# root shares the host's network namespace, so the test server started here
# on 127.0.0.1 is reachable from inside.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"

if [ "${NETAUTH_PKGTEST_INNER:-}" != 1 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "test-install.sh: must run as root (mount namespace, overlayfs, chroot)" >&2
        exit 1
    fi
    for tool in unshare chroot pamtester rpm sshd systemd-analyze apparmor_parser setpriv sudo; do
        command -v "$tool" >/dev/null || { echo "test-install.sh: $tool is missing" >&2; exit 1; }
    done
    exec env NETAUTH_PKGTEST_INNER=1 unshare --mount --propagation private -- bash "$0" "$@"
fi

DEB="${1:-$(ls -1t target/debian/netauth-unix_*_amd64.deb 2>/dev/null | head -n1)}"
RPM="${2:-$(ls -1t target/generate-rpm/netauth-unix-*.x86_64.rpm 2>/dev/null | head -n1)}"
[ -f "$DEB" ] || { echo "test-install.sh: no .deb (run bash packaging/build.sh)" >&2; exit 1; }
[ -f "$RPM" ] || { echo "test-install.sh: no .rpm (run bash packaging/build.sh)" >&2; exit 1; }
DEB="$(realpath "$DEB")"
RPM="$(realpath "$RPM")"

passed=0
failed=0
section() { printf '\n=== %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # description command...
    local what="$1"; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# ---------------------------------------------------------------- the .rpm
section "rpm: $RPM"
rpm_files="$(rpm -qpl "$RPM")"
echo "$rpm_files"
expected_rpm_files='/etc/netauth/config.toml
/etc/ssh/sshd_config.d/netauth.conf
/usr/lib/systemd/system/netauth-unix-publish.service
/usr/lib/systemd/system/netauth-unix-publish.timer
/usr/lib/systemd/system/netauth-unix-refresh.service
/usr/lib/systemd/system/netauth-unix-refresh.timer
/usr/lib64/libnss_netauth.so.2
/usr/lib64/security/pam_netauth.so
/usr/sbin/netauth-unix
/usr/share/doc/netauth-unix/README.authselect
/usr/share/doc/netauth-unix/changelog
/usr/share/licenses/netauth-unix/COPYRIGHT
/usr/share/licenses/netauth-unix/LICENSE
/usr/share/man/man8/netauth-unix.8.gz
/usr/share/man/man8/pam_netauth.8.gz'
check "rpm file list is exactly the expected one" [ "$rpm_files" = "$expected_rpm_files" ]
rpm_flags="$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILEMODES:perms} %{FILENAMES}\n]' "$RPM")"
echo "$rpm_flags" | grep -E 'config.toml|\.so|sbin'
check "rpm: config.toml is %config(noreplace)" grep -q -E '^cn +-rw-r--r-- /etc/netauth/config.toml$' <<<"$rpm_flags"
check "rpm: the sshd drop-in is %config(noreplace)" grep -q -E '^cn +-rw-r--r-- /etc/ssh/sshd_config.d/netauth.conf$' <<<"$rpm_flags"
check "rpm: modules and command are executable" \
    test "$(grep -c -E '^ *-rwxr-xr-x (/usr/lib64/libnss_netauth.so.2|/usr/lib64/security/pam_netauth.so|/usr/sbin/netauth-unix)$' <<<"$rpm_flags")" = 3
rpm_scripts="$(rpm -qp --scripts "$RPM")"
echo "$rpm_scripts"
check "rpm %post presets the timer on first install" grep -q 'systemctl --no-reload preset netauth-unix-refresh.timer' <<<"$rpm_scripts"
check "rpm %post refreshes at once on upgrade, without blocking" grep -q 'systemctl --no-block start netauth-unix-refresh.service' <<<"$rpm_scripts"
check "rpm %preun disables and stops the timer on erase" grep -q 'systemctl --no-reload disable --now netauth-unix-refresh.timer' <<<"$rpm_scripts"
check "rpm %postun try-restarts the timer on upgrade" grep -q 'systemctl try-restart netauth-unix-refresh.timer' <<<"$rpm_scripts"
# The publish timer is for the publishing host only: nothing may preset,
# enable or start it on install; erase takes it away if the admin enabled it.
rpm_post="$(rpm -qp --qf '%{POSTIN}' "$RPM")"
rpm_preun="$(rpm -qp --qf '%{PREUN}' "$RPM")"
rpm_postun="$(rpm -qp --qf '%{POSTUN}' "$RPM")"
check "rpm %post presets, enables and starts nothing of the publish units" \
    bash -c '! grep -v "^[[:space:]]*#" <<<"$1" | grep -q netauth-unix-publish' _ "$rpm_post"
check "rpm %preun disables and stops the publish timer and service on erase" \
    grep -q -E '^[[:space:]]+systemctl --no-reload disable --now netauth-unix-publish.timer netauth-unix-publish.service ' <<<"$rpm_preun"
check "rpm %postun try-restarts the publish timer on upgrade (only if running)" \
    grep -q -E 'systemctl try-restart .*netauth-unix-publish.timer' <<<"$rpm_postun"
check "rpm %postun deletes the published snapshot on erase" \
    grep -q -x '    rm -rf /var/lib/netauth-publish' <<<"$rpm_postun"
check "rpm scriptlets leave nsswitch.conf and pam.d to authselect" \
    bash -c '! grep -q -E "nsswitch.conf|/etc/pam.d|pam-auth-update" <<<"$1"' _ "$rpm_scripts"
check "rpm requires libpam" grep -q '^libpam.so.0()(64bit)$' <<<"$(rpm -qp --requires "$RPM")"
check "rpm digests verify" rpm -K --nosignature "$RPM"
# The .rpm is for RHEL 9 (glibc 2.34): its modules keep the shared
# unwinder; the .deb's link GCC's in (glibc 2.35) and need no libgcc_s.
newest_glibc() { readelf -V -W "$1" | grep -o 'GLIBC_2\.[0-9]*' | cut -d. -f2 | sort -n | tail -n1; }
needed_libs() { readelf -d -W "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | tr '\n' ' '; }
MODULES="$(mktemp -d /tmp/netauth-pkgtest-modules.XXXXXX)"
rpm2archive - <"$RPM" | tar -xz -C "$MODULES" ./usr/lib64/libnss_netauth.so.2 ./usr/lib64/security/pam_netauth.so
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$MODULES" ./lib/x86_64-linux-gnu/libnss_netauth.so.2 \
    ./lib/x86_64-linux-gnu/security/pam_netauth.so
rpm_nss="$MODULES/usr/lib64/libnss_netauth.so.2"
deb_nss="$MODULES/lib/x86_64-linux-gnu/libnss_netauth.so.2"
rpm_pam="$MODULES/usr/lib64/security/pam_netauth.so"
deb_pam="$MODULES/lib/x86_64-linux-gnu/security/pam_netauth.so"
echo "rpm NSS module: needs $(needed_libs "$rpm_nss")GLIBC_2.$(newest_glibc "$rpm_nss")"
echo "deb NSS module: needs $(needed_libs "$deb_nss")GLIBC_2.$(newest_glibc "$deb_nss")"
check "rpm NSS module needs no glibc newer than 2.34 (RHEL 9)" test "$(newest_glibc "$rpm_nss")" -le 34
check "rpm NSS module uses the shared unwinder" \
    test "$(needed_libs "$rpm_nss")" = "libgcc_s.so.1 libc.so.6 ld-linux-x86-64.so.2 "
check "rpm requires libgcc_s" grep -q '^libgcc_s.so.1()(64bit)$' <<<"$(rpm -qp --requires "$RPM")"
check "deb NSS module needs libc alone (the unwinder linked in)" \
    test "$(needed_libs "$deb_nss")" = "libc.so.6 ld-linux-x86-64.so.2 "
check "deb NSS module needs no glibc newer than 2.35" test "$(newest_glibc "$deb_nss")" -le 35
echo "rpm PAM module: needs $(needed_libs "$rpm_pam")GLIBC_2.$(newest_glibc "$rpm_pam")"
echo "deb PAM module: needs $(needed_libs "$deb_pam")GLIBC_2.$(newest_glibc "$deb_pam")"
check "rpm PAM module needs no glibc newer than 2.34 (RHEL 9)" test "$(newest_glibc "$rpm_pam")" -le 34
check "rpm PAM module uses the shared unwinder" \
    test "$(needed_libs "$rpm_pam")" = "libpam.so.0 libgcc_s.so.1 libc.so.6 ld-linux-x86-64.so.2 "
check "deb PAM module needs libpam and libc alone (the unwinder linked in)" \
    test "$(needed_libs "$deb_pam")" = "libpam.so.0 libc.so.6 ld-linux-x86-64.so.2 "
check "deb PAM module needs no glibc newer than 2.35" test "$(newest_glibc "$deb_pam")" -le 35
check "deb depends on a libc6 with _dl_find_object (2.35)" \
    grep -q 'libc6 (>= 2.35)' <<<"$(dpkg-deb -f "$DEB" Depends)"
rm -rf "$MODULES"
check "rpm payload unpacks to the same list" \
    test "$(rpm2archive - <"$RPM" | tar -tz | grep -v '/$' | sed 's#^\./#/#' | sort)" = "$(sort <<<"$expected_rpm_files")"

# ----------------------------------------------- the isolated Debian root
section "isolated root: overlay of / in a private mount namespace"
WORK="$(mktemp -d /tmp/netauth-pkgtest.XXXXXX)"
SERVER_PID=
SYSLOG_PID=
NGINX_PID=
stop_nginx() {
    if [ -n "${NGINX_PID:-}" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=
    fi
}
stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_nginx
    stop_server
    [ -z "${SYSLOG_PID:-}" ] || kill "$SYSLOG_PID" 2>/dev/null || true
    # The mounts vanish with the namespace; drop the empty mount point too.
    umount -R -l "$WORK" 2>/dev/null || true
    rmdir "$WORK" 2>/dev/null || true
}
trap cleanup EXIT
mount -t tmpfs -o mode=0700 netauth-pkgtest "$WORK"
mkdir -p "$WORK/upper" "$WORK/work" "$WORK/root" "$WORK/before" "$WORK/tls"
mount -t overlay overlay -o "lowerdir=/,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/root"
ROOT="$WORK/root"
mount -t proc proc "$ROOT/proc"
# A private /dev with the usual nodes, and a /dev/log socket of our own so
# that what the modules log (syslog, authpriv) can be read and checked.
mount -t tmpfs -o mode=0755 tmpfs "$ROOT/dev"
for node in null zero full random urandom tty; do
    touch "$ROOT/dev/$node"
    mount --bind "/dev/$node" "$ROOT/dev/$node"
done
mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "ab", buffering=0)
print("ready", flush=True)
while True:
    out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$ROOT/dev/log" "$WORK/syslog" >"$WORK/syslog.ready" &
SYSLOG_PID=$!
for _ in $(seq 50); do [ -s "$WORK/syslog.ready" ] && break; sleep 0.1; done
mount -t tmpfs tmpfs "$ROOT/tmp"
# An empty /run: no /run/systemd/system, so the maintainer scripts act as in
# a chroot (enable the timer, start nothing) and talk to no host daemon.
mount -t tmpfs tmpfs "$ROOT/run"
# The build tree stays visible read-only for nothing in particular; the
# package is copied in like a download.
cp "$DEB" "$ROOT/tmp/netauth-unix.deb"
grep -E '^(PRETTY_NAME|VERSION_ID)=' "$ROOT/etc/os-release"

in_root() {
    chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

# --------------------------------------------------------- the test server
section "test server"
cargo build --quiet -p netauth-testserver --bin netauth-testserver
SERVER_OUT="$WORK/server.out"
"$REPO/target/debug/netauth-testserver" --fixture "$REPO/packaging/test-fixture.toml" \
    --tls-dir "$WORK/tls" --ignore-stdin >"$SERVER_OUT" 2>"$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q '^LISTENING ' "$SERVER_OUT" && break
    sleep 0.1
done
ADDR="$(sed -n 's/^LISTENING //p' "$SERVER_OUT")"
[ -n "$ADDR" ] || { echo "test server did not start:"; cat "$WORK/server.err"; exit 1; }
PORT="${ADDR##*:}"
echo "listening on $ADDR"

# ------------------------------------------------------------ install
snapshot() { # name: copies of what the package must give back
    rm -rf "${WORK:?}/$1"
    mkdir -p "$WORK/$1"
    cp -a "$ROOT/etc/nsswitch.conf" "$ROOT/etc/pam.d" "$WORK/$1/"
    find "$ROOT/etc" -xdev \( -type f -o -type l \) -printf '%P %l\n' | sort >"$WORK/$1/etc-files"
}
# A local account, made before the snapshot so that the files useradd
# touches are the same before and after: local logins must keep working.
in_root useradd -M -s /usr/sbin/nologin pkgtest-local
echo 'pkgtest-local:local-secret-1' | in_root chpasswd
snapshot before
# What sshd would run with, before the package: the drop-in must not change it.
mkdir -p "$ROOT/run/sshd"
in_root sshd -T -C user=alice,host=localhost,addr=127.0.0.1 >"$WORK/sshd-T.before"

# The README's shell block that follows `<!-- install-test: NAME -->`.
readme_block() {
    awk -v marker="<!-- install-test: $1 -->" '
        $0 == marker { armed = 1; next }
        armed && /^```sh$/ { inside = 1; next }
        inside && /^```$/ { exit }
        inside { print }' "$REPO/README.md"
}

section "the README's install guide, run as written"
# In a checkout as the guide assumes it (the package at the path the build
# writes, the server's certificate next to it), with an `editor` that makes
# the one edit the guide asks for (core.server, and core.port as the test
# server listens on a random one); only the example user is replaced.
GUIDE="$ROOT/root/netauth-unix"
mkdir -p "$GUIDE/target/debian" "$ROOT/root/guide-bin"
cp "$REPO"/target/debian/*.deb "$GUIDE/target/debian/"
cp "$WORK/tls/tls.pem" "$GUIDE/server-cert.pem"
printf '#!/bin/sh\nset -e\nsed -i -E -e %s -e %s "$1"\n' \
    "'s/^#?server = .*/server = \"127.0.0.1\"/'" "'s/^#?port = .*/port = $PORT/'" \
    >"$ROOT/root/guide-bin/editor"
chmod 0755 "$ROOT/root/guide-bin/editor"
guide="$(readme_block debian-guide)"
printf '%s\n' "$guide"
check "the README has the install guide block" grep -q '^apt install ' <<<"$guide"
check "no /etc/netauth/keys before the guide runs (the guide must make it)" test ! -e "$ROOT/etc/netauth/keys"
guide_ok=0
in_root env PATH=/root/guide-bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c \
    'set -euo pipefail -x; cd /root/netauth-unix; '"${guide//some-netauth-user/alice}" \
    >"$WORK/guide.out" 2>&1 && guide_ok=1
cat "$WORK/guide.out"
check "every line of the install guide succeeded" test "$guide_ok" = 1
check "the guide's getent found the NetAuth user" grep -q -E '^alice:[^:]*:61001:6001:' "$WORK/guide.out"
check "the guide's status says all is well" grep -q -E 'health: +ok' "$WORK/guide.out"
rm -rf "$GUIDE" "$ROOT/root/guide-bin"

section "dpkg -i (a reinstall over the installed version)"
cp "$ROOT/etc/nsswitch.conf" "$WORK/nsswitch.after-first"
in_root dpkg -i /tmp/netauth-unix.deb
check "package is installed" test "$(in_root dpkg-query -W -f='${db:Status-Abbrev}' netauth-unix)" = "ii "
check "second install changed nothing in nsswitch.conf" cmp -s "$WORK/nsswitch.after-first" "$ROOT/etc/nsswitch.conf"
in_root dpkg -L netauth-unix | grep -v -E '/$|^/\.$' | sort
for path in /usr/sbin/netauth-unix /lib/x86_64-linux-gnu/libnss_netauth.so.2 \
    /lib/x86_64-linux-gnu/security/pam_netauth.so /etc/netauth/config.toml \
    /usr/share/pam-configs/netauth /usr/lib/systemd/system/netauth-unix-refresh.service \
    /usr/lib/systemd/system/netauth-unix-refresh.timer /usr/lib/systemd/system/netauth-unix-publish.service \
    /usr/lib/systemd/system/netauth-unix-publish.timer /usr/share/man/man8/netauth-unix.8.gz \
    /usr/share/doc/netauth-unix/copyright /usr/share/doc/netauth-unix/changelog.Debian.gz; do
    check "installed: $path" test -e "$ROOT$path"
done
check "config.toml is a conffile" grep -q '^ /etc/netauth/config.toml ' <<<"$(in_root dpkg-query -W -f='${Conffiles}\n' netauth-unix)"
check "the sshd drop-in is a conffile" grep -q '^ /etc/ssh/sshd_config.d/netauth.conf ' <<<"$(in_root dpkg-query -W -f='${Conffiles}\n' netauth-unix)"
check "no netkeys link is shipped (a netkeys of NetAuth's may live there)" \
    bash -c '! in_root dpkg -L netauth-unix | grep -q netkeys' 
check "netauth-unix --help answers" in_root /usr/sbin/netauth-unix --help

section "nsswitch.conf after install (diff against before)"
diff -u "$WORK/before/nsswitch.conf" "$ROOT/etc/nsswitch.conf" || true
check "passwd line: netauth right after files" grep -q -E '^passwd:[[:space:]]+files netauth( |$)' "$ROOT/etc/nsswitch.conf"
check "group line: netauth right after files" grep -q -E '^group:[[:space:]]+files netauth( |$)' "$ROOT/etc/nsswitch.conf"
check "shadow line untouched" test "$(grep '^shadow:' "$ROOT/etc/nsswitch.conf")" = "$(grep '^shadow:' "$WORK/before/nsswitch.conf")"
check "no install marker left behind" test ! -e "$ROOT/etc/nsswitch.conf.nss.netauth-unix-will-install"

section "/etc/pam.d after install (diff against before)"
diff -ru "$WORK/before/pam.d" "$ROOT/etc/pam.d" || true
check "common-auth: pam_netauth after pam_unix, use_first_pass" \
    awk '/pam_unix.so/{u=NR} /pam_netauth.so use_first_pass/{n=NR} END{exit !(u && n && u<n)}' "$ROOT/etc/pam.d/common-auth"
check "common-account: pam_localuser skips pam_netauth for local users" \
    grep -q -E 'success=1 default=ignore\][[:space:]]+pam_localuser.so' "$ROOT/etc/pam.d/common-account"
check "common-account: pam_netauth denies on error" \
    grep -q -E 'default=bad\][[:space:]]+pam_netauth.so ignore_unknown_user' "$ROOT/etc/pam.d/common-account"
check "common-password: pam_netauth after pam_unix" \
    awk '/pam_unix.so/{u=NR} /pam_netauth.so/{n=NR} END{exit !(u && n && u<n)}' "$ROOT/etc/pam.d/common-password"
check "common-session: pam_netauth optional" grep -q -E '^session[[:space:]]+optional[[:space:]]+pam_netauth.so' "$ROOT/etc/pam.d/common-session"
check "common-session-noninteractive: no pam_netauth" bash -c '! grep -q pam_netauth "$1"' _ "$ROOT/etc/pam.d/common-session-noninteractive"
check "common-session: pam_mkhomedir, skipped for local users by pam_localuser" \
    awk '/success=1 default=ignore\][[:space:]]+pam_localuser.so/{l=NR} /^session[[:space:]]+optional[[:space:]]+pam_mkhomedir.so[[:space:]]*$/{m=NR} END{exit !(l && m == l + 1)}' "$ROOT/etc/pam.d/common-session"
check "common-session-noninteractive: no pam_mkhomedir (cron, scp of services...)" \
    bash -c '! grep -q pam_mkhomedir "$1"' _ "$ROOT/etc/pam.d/common-session-noninteractive"
in_root pam-auth-update --disable netauth-mkhomedir
check "pam-auth-update --disable netauth-mkhomedir: no pam_mkhomedir, pam_netauth stays" \
    bash -c '! grep -q pam_mkhomedir "$1/common-session" && grep -q pam_netauth "$1/common-session" && grep -q pam_netauth "$1/common-auth"' _ "$ROOT/etc/pam.d"
in_root dpkg -i /tmp/netauth-unix.deb >/dev/null
check "an upgrade keeps home directory creation off" bash -c '! grep -q pam_mkhomedir "$1"' _ "$ROOT/etc/pam.d/common-session"
in_root pam-auth-update --enable netauth-mkhomedir
check "pam-auth-update --enable netauth-mkhomedir puts it back" grep -q pam_mkhomedir "$ROOT/etc/pam.d/common-session"

section "sshd drop-in (shipped disabled)"
cat "$ROOT/etc/ssh/sshd_config.d/netauth.conf"
check "no directive is active as installed" bash -c '! grep -v -E "^[[:space:]]*(#|$)" "$1"' _ "$ROOT/etc/ssh/sshd_config.d/netauth.conf"
in_root sshd -T -C user=alice,host=localhost,addr=127.0.0.1 >"$WORK/sshd-T.installed"
check "sshd's effective configuration is unchanged by the install" cmp -s "$WORK/sshd-T.before" "$WORK/sshd-T.installed"

section "systemd units"
check "timer enabled (timers.target.wants link)" test -L "$ROOT/etc/systemd/system/timers.target.wants/netauth-unix-refresh.timer"
# The publish timer is for the publishing host only: two installs (the
# guide's and the reinstall above) must not have enabled it.
check "publish timer installed but not enabled (no timers.target.wants link)" \
    test ! -e "$ROOT/etc/systemd/system/timers.target.wants/netauth-unix-publish.timer" -a ! -L "$ROOT/etc/systemd/system/timers.target.wants/netauth-unix-publish.timer"
# systemctl reads the unit files offline here (no systemd in the root).
check "systemctl is-enabled: refresh timer enabled" \
    test "$(in_root systemctl is-enabled netauth-unix-refresh.timer 2>&1)" = enabled
check "systemctl is-enabled: publish timer disabled" \
    test "$(in_root systemctl is-enabled netauth-unix-publish.timer 2>&1)" = disabled
check "systemctl is-enabled: publish service static (runs only from its timer)" \
    test "$(in_root systemctl is-enabled netauth-unix-publish.service 2>&1)" = static
# The snippets cargo-deb wrote: the publish timer is never enabled, only
# kept enabled on upgrades where the admin enabled it; removal stops it.
postinst_publish="$(grep -E 'deb-systemd-helper (enable|--quiet was-enabled|debian-installed) netauth-unix-publish' "$ROOT/var/lib/dpkg/info/netauth-unix.postinst" || true)"
printf '%s\n' "$postinst_publish"
check "postinst enables the publish timer only where it was enabled before" \
    bash -c 'grep -q "debian-installed netauth-unix-publish.timer" <<<"$1" && grep -q "was-enabled netauth-unix-publish.timer" <<<"$1"' _ "$postinst_publish"
check "prerm stops the publish units on removal" \
    awk '/\[ "\$1" = remove \]/{r=1} r && /deb-systemd-invoke stop .*netauth-unix-publish.timer/{f=1} /^fi/{r=0} END{exit !f}' "$ROOT/var/lib/dpkg/info/netauth-unix.prerm"
# systemd-analyze verify needs no systemd running as PID 1 (it loads the
# units offline, checks ExecStart= is executable and Documentation= man
# pages exist): it runs here, inside the root, on the installed files.
units="/usr/lib/systemd/system/netauth-unix-refresh.service /usr/lib/systemd/system/netauth-unix-refresh.timer
/usr/lib/systemd/system/netauth-unix-publish.service /usr/lib/systemd/system/netauth-unix-publish.timer"
# shellcheck disable=SC2086 # one word per unit
in_root systemd-analyze verify $units >"$WORK/verify.out" 2>&1 || true
cat "$WORK/verify.out"
# shellcheck disable=SC2086
check "systemd-analyze verify accepts the four units" in_root systemd-analyze verify $units
check "systemd-analyze verify said nothing about them" \
    bash -c '! grep -q netauth-unix "$1"' _ "$WORK/verify.out"

section "the README's timer interval drop-in"
interval="$(readme_block timer-interval)"
printf '%s\n' "$interval"
check "the README has the timer interval block" grep -q 'OnUnitActiveSec=2min' <<<"$interval"
# Without systemd as PID 1 here, the lines that write files run and
# systemd-analyze checks the result; daemon-reload and restart cannot.
in_root bash -c 'set -euo pipefail -x; '"$(grep -v '^systemctl ' <<<"$interval")"
in_root systemd-analyze verify netauth-unix-refresh.timer >"$WORK/verify-interval.out" 2>&1 || true
cat "$WORK/verify-interval.out"
check "systemd-analyze verify accepts the timer with the drop-in, silently" \
    bash -c '! grep -q -E "netauth|interval" "$1"' _ "$WORK/verify-interval.out"
in_root systemd-analyze cat-config systemd/system/netauth-unix-refresh.timer >"$WORK/timer.cat" 2>&1 || true
check "the drop-in is read after the shipped timer, so its interval wins" \
    awk '/^OnUnitActiveSec=5min$/{s=NR} /^OnUnitActiveSec=$/{c=NR} /^OnUnitActiveSec=2min$/{n=NR} END{exit !(s && c > s && n > c)}' "$WORK/timer.cat"
rm -r "$ROOT/etc/systemd/system/netauth-unix-refresh.timer.d"

# ------------------------------------------------------ use it for real
section "configure for the test server, refresh"
mkdir -p "$ROOT/etc/netauth/keys"
cp "$WORK/tls/tls.pem" "$ROOT/etc/netauth/keys/tls.pem"
# The installed example with every documented key switched on at its
# documented default (the refresh and pam_netauth refuse unknown keys in
# their tables, so this proves the documentation right), pointed at the test
# server, plus an access rule for the PAM service used below.
sed -E -e 's/^#([A-Za-z_]+ = )/\1/' -e 's/^#(\[unix\.pam\.service\.)/\1/' \
    -e 's/^server = .*/server = "127.0.0.1"/' -e "s/^port = .*/port = $PORT/" \
    -e 's/^master = .*/master = "127.0.0.1"/' -e 's/^ID = .*/ID = "pkgtest-host"/' \
    "$ROOT/etc/netauth/config.toml" >"$WORK/config.toml"
printf '\n[unix.pam.service.netauth-test]\nallow_groups = ["nx-engineering"]\n' >>"$WORK/config.toml"
cp "$WORK/config.toml" "$ROOT/etc/netauth/config.toml"
grep -v -E '^#|^$' "$ROOT/etc/netauth/config.toml"
check "netauth-unix refresh" in_root netauth-unix refresh
in_root netauth-unix status || true
check "cache written under /var/lib/netauth" test -s "$ROOT/var/lib/netauth/nss.cache"

section "publish: the unit's ExecStart, run in the root"
publish_unit="$ROOT/usr/lib/systemd/system/netauth-unix-publish.service"
publish_cmd="$(sed -n 's/^ExecStart=//p' "$publish_unit")"
echo "ExecStart=$publish_cmd"
check "the publish service has one ExecStart" test "$(grep -c '^ExecStart=' "$publish_unit")" = 1
# systemd makes StateDirectory= (under /var/lib, with StateDirectoryMode=)
# before ExecStart: the command must write exactly there, and that folder
# must be the one the sandbox lets it write.
state_dir="/var/lib/$(sed -n 's/^StateDirectory=//p' "$publish_unit")"
check "ExecStart writes into StateDirectory $state_dir (mode 0755), its only ReadWritePaths" \
    bash -c '[ "$1" = "/usr/sbin/netauth-unix publish --out $2" ] && [ "$(sed -n "s/^ReadWritePaths=//p" "$3")" = "$2" ] && grep -qx "StateDirectoryMode=0755" "$3"' \
    _ "$publish_cmd" "$state_dir" "$publish_unit"
# Everything from NoNewPrivileges= on, comments and the writable folder left out.
hardening() { sed -n '/^NoNewPrivileges=/,$p' "$1" | grep -v -E '^(#|$|ReadWritePaths=)' || true; }
hardening "$publish_unit" >"$WORK/hardening.publish"
hardening "$ROOT/usr/lib/systemd/system/netauth-unix-refresh.service" >"$WORK/hardening.refresh"
check "the publish service is hardened as the refresh service is (but for the folder)" \
    bash -c '[ "$(wc -l <"$1")" -ge 25 ] && diff -u "$2" "$1"' _ "$WORK/hardening.publish" "$WORK/hardening.refresh"
exposure() { # unit: systemd's own score of its sandbox (lower is tighter)
    in_root systemd-analyze security --offline=yes "/usr/lib/systemd/system/$1" 2>/dev/null \
        | sed -n 's/^.*Overall exposure level for [^:]*: \([0-9.]*\) .*$/\1/p' || true
}
publish_exposure="$(exposure netauth-unix-publish.service)"
refresh_exposure="$(exposure netauth-unix-refresh.service)"
echo "systemd-analyze security: publish $publish_exposure, refresh $refresh_exposure"
check "systemd-analyze security scores the publish sandbox no worse than the refresh's" \
    awk -v p="$publish_exposure" -v r="$refresh_exposure" 'BEGIN { exit !(p != "" && r != "" && p + 0 <= r + 0) }'
in_root netauth-unix keygen >"$WORK/keygen.out" 2>"$WORK/keygen.err" || true
cat "$WORK/keygen.err" "$WORK/keygen.out"
publisher_key_line="$(grep -E '^publisher_key = "ed25519:[A-Za-z0-9+/=]+"$' "$WORK/keygen.out" || true)"
check "keygen printed the hosts' publisher_key line" test -n "$publisher_key_line"
check "the private key is root's, mode 0600" test "$(stat -c %U:%a "$ROOT/etc/netauth/publisher.key" 2>/dev/null)" = root:600
check "the output folder does not exist before the first run" test ! -e "$ROOT$state_dir"
# shellcheck disable=SC2086 # the unit's command line, word by word as systemd splits it
run_publish() { in_root sh -c "umask 0022 && exec $publish_cmd"; }
publish_ok=0
run_publish >"$WORK/publish.out" 2>&1 && publish_ok=1
cat "$WORK/publish.out"
check "the unit's ExecStart publishes (test server, key from keygen)" test "$publish_ok" = 1
check "it says it published" grep -q "^netauth-unix: published snapshot .* in $state_dir: " "$WORK/publish.out"
check "$state_dir: root's, mode 0755" test "$(stat -c %U:%a "$ROOT$state_dir" 2>/dev/null)" = root:755
check "$state_dir/snapshot.json: root's, mode 0644" test "$(stat -c %U:%a "$ROOT$state_dir/snapshot.json" 2>/dev/null)" = root:644
check "$state_dir/snapshot.json.sig: root's, mode 0644" test "$(stat -c %U:%a "$ROOT$state_dir/snapshot.json.sig" 2>/dev/null)" = root:644
check "the folder holds the two files and publish's lock (0600), nothing else" \
    test "$(cd "$ROOT$state_dir" 2>/dev/null && stat -c '%n %a' -- .[!.]* * 2>/dev/null | sort | tr '\n' ' ')" = ".publish.lock 600 snapshot.json 644 snapshot.json.sig 644 "
check "the snapshot holds the test directory (alice, nx-engineering)" \
    bash -c 'grep -q "\"alice\"" "$1" && grep -q "\"nx-engineering\"" "$1"' _ "$ROOT$state_dir/snapshot.json" 2>/dev/null
# The web server reads the folder as its own user; the key must stay out of
# its reach.
as_www_cat() { chroot --userspec=www-data:www-data "$ROOT" /usr/bin/env -i PATH=/usr/bin:/bin cat "$@" >/dev/null; }
check "the web server's user (www-data) reads both files" \
    as_www_cat "$state_dir/snapshot.json" "$state_dir/snapshot.json.sig"
check "the web server's user cannot read the private key" \
    bash -c '! chroot --userspec=www-data:www-data "$1" /usr/bin/env -i PATH=/usr/bin:/bin cat /etc/netauth/publisher.key >/dev/null 2>&1' _ "$ROOT"
# (|| true: a missing file fails the checks below, not the script.)
stat -c '%n %y %s' "$ROOT$state_dir"/snapshot.json* >"$WORK/published.stat" || true
cp "$ROOT$state_dir/snapshot.json" "$WORK/snapshot.first" || true
publish_ok=0
run_publish >"$WORK/publish2.out" 2>&1 && publish_ok=1
cat "$WORK/publish2.out"
check "a second run succeeds and says the unchanged snapshot was kept" \
    bash -c '[ "$1" = 1 ] && grep -q "^netauth-unix: unchanged, kept snapshot " "$2"' _ "$publish_ok" "$WORK/publish2.out"
check "and leaves both files untouched (same bytes, same modification times)" \
    bash -c 'cmp -s "$1" "$2/snapshot.json" && [ "$(stat -c "%n %y %s" "$2"/snapshot.json*)" = "$(cat "$3")" ]' \
    _ "$WORK/snapshot.first" "$ROOT$state_dir" "$WORK/published.stat"

section "the publish unit's own comment: another folder by a drop-in"
# The lines the comment gives, as an admin would copy them.
dropin="$(sed -n 's/^#   //p' "$publish_unit")"
mkdir_cmd="$(grep -o 'install -d -m 0755 [^)]*' "$publish_unit" || true)"
printf '%s\n%s\n' "$mkdir_cmd" "$dropin"
check "the comment gives the folder's install -d and a drop-in clearing ExecStart" \
    bash -c '[ -n "$1" ] && [ "$(grep -c "^ExecStart=" <<<"$2")" = 2 ] && grep -qx "ExecStart=" <<<"$2"' _ "$mkdir_cmd" "$dropin"
other_dir="${mkdir_cmd##* }"
in_root sh -c "$mkdir_cmd" || true
mkdir -p "$ROOT/etc/systemd/system/netauth-unix-publish.service.d"
printf '%s\n' "$dropin" >"$ROOT/etc/systemd/system/netauth-unix-publish.service.d/override.conf"
in_root systemd-analyze verify netauth-unix-publish.service >"$WORK/verify-dropin.out" 2>&1 || true
cat "$WORK/verify-dropin.out"
check "systemd-analyze verify accepts the service with the drop-in, silently" \
    bash -c '! grep -q netauth "$1"' _ "$WORK/verify-dropin.out"
in_root systemd-analyze cat-config systemd/system/netauth-unix-publish.service >"$WORK/publish.cat" 2>&1 || true
# The effective command: the last ExecStart= after the last empty one.
effective_cmd="$(awk '/^ExecStart=$/{cmd=""; next} /^ExecStart=/{cmd=substr($0, 11)} END{print cmd}' "$WORK/publish.cat")"
echo "effective ExecStart=$effective_cmd"
check "with the drop-in, the one command publishes into $other_dir, which is writable in the sandbox" \
    bash -c '[ "$(grep -c "^ExecStart=/" "$1")" = 2 ] && [ "$2" = "/usr/sbin/netauth-unix publish --out $3" ] && grep -qx "ReadWritePaths=$3" "$1"' \
    _ "$WORK/publish.cat" "$effective_cmd" "$other_dir"
publish_ok=0
in_root sh -c "umask 0022 && exec $effective_cmd" >"$WORK/publish-other.out" 2>&1 && publish_ok=1
cat "$WORK/publish-other.out"
check "that command publishes there (root's folder made by the comment's install -d)" \
    bash -c '[ "$1" = 1 ] && [ "$(stat -c %a "$2/snapshot.json" 2>/dev/null)" = 644 ] && [ -s "$2/snapshot.json.sig" ]' \
    _ "$publish_ok" "$ROOT$other_dir"
rm -r "$ROOT/etc/systemd/system/netauth-unix-publish.service.d"
[ -z "$other_dir" ] || rm -rf "${ROOT:?}$other_dir"

section "the man page's nginx block serves the folder; a host refreshes from it"
nginx_block="$(zcat "$ROOT/usr/share/man/man8/netauth-unix.8.gz" \
    | awk '/^\.\\" nginx-example/{on=1; next} on && /^\.fi/{exit} on' | sed -e 's/\\-/-/g' -e 's/\\e/\\/g' || true)"
printf '%s\n' "$nginx_block"
check "the installed man page has the nginx block for $state_dir" grep -q -F "alias $state_dir/;" <<<"$nginx_block"
NGINX_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$ROOT/tmp/nginx"
# Debian's nginx, run by hand in the root (never its service), workers as
# www-data as Debian's configuration has them.
cat >"$ROOT/tmp/nginx/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 1;
user www-data www-data;
pid /tmp/nginx/nginx.pid;
error_log /tmp/nginx/error.log info;
events { worker_connections 16; }
http {
    log_format fleet '\$request_method \$uri \$status';
    access_log /tmp/nginx/access.log fleet;
    client_body_temp_path /tmp/nginx/body;
    proxy_temp_path /tmp/nginx/proxy;
    fastcgi_temp_path /tmp/nginx/fastcgi;
    uwsgi_temp_path /tmp/nginx/uwsgi;
    scgi_temp_path /tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
$nginx_block
    }
}
NGINX
chroot "$ROOT" /usr/sbin/nginx -p /tmp/nginx -c /tmp/nginx/nginx.conf -e /tmp/nginx/error.log \
    >"$WORK/nginx.out" 2>&1 &
NGINX_PID=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && break
    sleep 0.1
done
HOST="$ROOT/root/fleet-host"
mkdir -m 0700 "$HOST"
# A host that never talks to NetAuth for its refresh (the server it names is
# a closed port), with its own cache folder.
cat >"$HOST/config.toml" <<HOSTCONF
[core]
server = "127.0.0.1"
port = 9
[tls]
pwn_me = true
[unix]
cache_dir = "/root/fleet-host/cache"
[unix.refresh]
source = "http://127.0.0.1:$NGINX_PORT/netauth/"
$publisher_key_line
HOSTCONF
host_ok=0
in_root netauth-unix refresh --config /root/fleet-host/config.toml >"$WORK/host-refresh.out" 2>&1 && host_ok=1
cat "$WORK/host-refresh.out"
check "a host refreshes from the snapshot nginx serves" test "$host_ok" = 1
check "its cache was written" test -s "$HOST/cache/nss.cache"
host_ok=0
in_root netauth-unix refresh --config /root/fleet-host/config.toml >>"$WORK/host-refresh.out" 2>&1 && host_ok=1
cat "$ROOT/tmp/nginx/access.log" 2>/dev/null || cat "$ROOT/tmp/nginx/error.log" || true
check "nginx (as www-data) served snapshot.json and its signature" \
    bash -c 'grep -qx "GET /netauth/snapshot.json 200" "$1" && grep -qx "GET /netauth/snapshot.json.sig 200" "$1"' _ "$ROOT/tmp/nginx/access.log"
check "the second refresh: 304 Not Modified (the unchanged publish kept the ETag)" \
    bash -c '[ "$1" = 1 ] && [ "$(tail -n 1 "$2")" = "GET /netauth/snapshot.json 304" ]' _ "$host_ok" "$ROOT/tmp/nginx/access.log"
stop_nginx
rm -rf "$HOST" "$ROOT/tmp/nginx"

section "publish timer enabled by the admin, then an upgrade"
in_root systemctl enable netauth-unix-publish.timer || true
check "systemctl enable made the timers.target.wants link" \
    test -L "$ROOT/etc/systemd/system/timers.target.wants/netauth-unix-publish.timer"
in_root dpkg -i /tmp/netauth-unix.deb >"$WORK/upgrade-enabled.log" 2>&1 || cat "$WORK/upgrade-enabled.log"
check "an upgrade keeps the admin's choice (publish timer still enabled)" \
    test "$(in_root systemctl is-enabled netauth-unix-publish.timer 2>&1)" = enabled

section "NSS through the installed module"
in_root getent passwd alice bob || true
in_root getent group nx-people nx-engineering || true
in_root id alice || true
check "getent passwd alice" grep -q -E '^alice:[^:]*:61001:6001:' <<<"$(in_root getent passwd alice)"
check "getent passwd 61002 (bob)" grep -q -E '^bob:[^:]*:61002:6001:' <<<"$(in_root getent passwd 61002)"
check "getent group nx-people lists its members" grep -q -E '^nx-people:[^:]*:6001:.*alice' <<<"$(in_root getent group nx-people)"
check "id alice: nx-developers and nx-engineering (INCLUDE rule)" \
    bash -c 'grep -q "(nx-developers)" <<<"$1" && grep -q "(nx-engineering)" <<<"$1"' _ "$(in_root id alice)"
check "id dave: no nx-engineering (EXCLUDE rule)" \
    bash -c 'grep -q "(nx-interns)" <<<"$1" && ! grep -q "(nx-engineering)" <<<"$1"' _ "$(in_root id dave)"
check "local root still comes from files" grep -q '^root:x:0:0:' <<<"$(in_root getent passwd root)"

section "the README's sudo rule with a NetAuth group"
sudoers="$(readme_block sudoers)"
printf '%s\n' "$sudoers"
check "the README has the sudoers block" grep -q '^echo .%nx-engineering' <<<"$sudoers"
sudo_ok=0
in_root bash -c 'set -euo pipefail -x; '"$sudoers" >"$WORK/sudo.out" 2>&1 && sudo_ok=1
cat "$WORK/sudo.out"
check "the sudoers lines succeeded (visudo -c included)" test "$sudo_ok" = 1
check "sudo -l -U alice: the %nx-engineering rule applies (NSS groups)" \
    grep -q -E '^ +\(ALL : ALL\) ALL$' "$WORK/sudo.out"
in_root sudo -l -U dave >"$WORK/sudo-dave.out" 2>&1 || true
cat "$WORK/sudo-dave.out"
check "sudo -l -U dave (excluded from nx-engineering): not allowed" grep -q 'not allowed' "$WORK/sudo-dave.out"
rm -f "$ROOT/etc/sudoers.d/netauth-engineering"

section "ssh-keys as sshd runs it (as nobody), and the drop-in enabled"
nobody_keys() { in_root setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/netauth-unix ssh-keys "$@"; }
nobody_keys alice || true
check "ssh-keys alice (as nobody): her key, from the server" \
    test "$(nobody_keys alice)" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPkgTestKeyOfAlice alice@pkgtest"
check "ssh-keys erin (locked): nothing, exit 0" test -z "$(nobody_keys erin)"
check "ssh-keys root (local): nothing, exit 0" test -z "$(nobody_keys root)"
enable_cmd="$(grep -o "sed -i '[^']*' /etc/ssh/sshd_config.d/netauth.conf" "$ROOT/etc/ssh/sshd_config.d/netauth.conf")"
echo "documented command: $enable_cmd"
check "the drop-in documents its enable command" test -n "$enable_cmd"
in_root sh -c "$enable_cmd"
in_root sshd -T -C user=alice,host=localhost,addr=127.0.0.1 >"$WORK/sshd-T.enabled"
diff "$WORK/sshd-T.installed" "$WORK/sshd-T.enabled" || true
check "enabled: sshd runs ssh-keys as nobody" \
    bash -c 'grep -qx "authorizedkeyscommand /usr/sbin/netauth-unix ssh-keys %u" "$1" && grep -qx "authorizedkeyscommanduser nobody" "$1"' _ "$WORK/sshd-T.enabled"
check "enabled: nothing else changed" \
    test "$(diff "$WORK/sshd-T.installed" "$WORK/sshd-T.enabled" | grep -c '^>')" = 2

section "PAM through the installed pam-auth-update profile (pamtester)"
cat >"$ROOT/etc/pam.d/netauth-test" <<'EOF'
@include common-auth
@include common-account
@include common-password
@include common-session
EOF
pam() { # expect(0|1) user password operations...
    local expect="$1" user="$2" password="$3"; shift 3
    local rc=0
    printf '%s\n' "$password" | in_root pamtester -v netauth-test "$user" "$@" >"$WORK/pam.out" 2>&1 || rc=$?
    sed 's/^/    /' "$WORK/pam.out"
    if [ "$expect" = 0 ]; then [ "$rc" = 0 ]; else [ "$rc" != 0 ]; fi
}
export -f pam in_root
export ROOT WORK
check "alice, right password: authenticate + acct_mgmt succeed" pam 0 alice alice-secret authenticate acct_mgmt
check "alice, wrong password: refused" pam 1 alice not-her-password authenticate
check "erin (locked): refused" pam 1 erin erin-secret authenticate
check "bob, right password, not in nx-engineering: authenticates, account refused" \
    bash -c '! pam 0 bob bob-secret authenticate acct_mgmt && grep -q "successfully authenticated" "$1"' _ "$WORK/pam.out"
check "local user via pam_unix: succeeds" pam 0 pkgtest-local local-secret-1 authenticate acct_mgmt
check "local user, wrong password: refused" pam 1 pkgtest-local wrong authenticate
# Password change: pam_unix passes on a non-local user without asking, so
# pam_netauth asks for the current and the new password itself.
check "alice changes her NetAuth password (chauthtok)" \
    bash -c 'printf "%s\n" alice-secret alice-new-1 alice-new-1 | chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin pamtester -v netauth-test alice chauthtok' _ "$ROOT"
check "alice, new password works" pam 0 alice alice-new-1 authenticate
check "alice, old password refused" pam 1 alice alice-secret authenticate

section "home directories: pam_mkhomedir for NetAuth users only"
check "alice has no home yet" test ! -e "$ROOT/home/alice"
check "alice opens a session" pam 0 alice unused open_session close_session
ls -la "$ROOT/home/alice" || true
check "her home was made, owned by her uid and gid" test "$(stat -c %u:%g "$ROOT/home/alice" 2>/dev/null)" = 61001:6001
check "with the mode useradd gives (login.defs UMASK 022: 0755)" test "$(stat -c %a "$ROOT/home/alice" 2>/dev/null)" = 755
check "from /etc/skel" test -f "$ROOT/home/alice/.profile"
check "the local user (no home, made with useradd -M) opens a session" pam 0 pkgtest-local unused open_session close_session
check "pam_mkhomedir left the local user alone" test ! -e "$ROOT/home/pkgtest-local"

section "what pam_netauth logged (syslog, via the root's /dev/log)"
cat "$WORK/syslog" || true
check "pam_netauth logged its decisions" grep -q 'pam_netauth' "$WORK/syslog"
check "bob was refused by pam_netauth's access rule (not by another module)" \
    grep -q -E 'pam_netauth\(netauth-test:account\).*bob.*PAM_PERM_DENIED' "$WORK/syslog"
check "pam_netauth's account step never ran for the local user" \
    bash -c '! grep -q -E "pam_netauth\(netauth-test:account\).*pkgtest-local" "$1"' _ "$WORK/syslog"
check "no password in the log" \
    bash -c '! grep -q -F -e alice-secret -e alice-new-1 -e bob-secret -e erin-secret -e local-secret-1 -e not-her-password "$1"' _ "$WORK/syslog"

section "server stopped: local users unaffected, NSS answers from the cache"
stop_server
check "local user still authenticates" pam 0 pkgtest-local local-secret-1 authenticate acct_mgmt
# alice logged in online with alice-new-1: her cached credentials let her
# in (pam_netauth says so); a wrong or old password, or a user without
# cached credentials, is refused.
check "alice logs in with cached credentials while the server is down" \
    bash -c 'pam 0 alice alice-new-1 authenticate && grep -q "authenticated with cached credentials" "$WORK/pam.out"'
check "alice, old password refused while the server is down" pam 1 alice alice-secret authenticate
check "erin (locked: no cached credentials) refused while the server is down" pam 1 erin erin-secret authenticate
check "cached credentials folder is root's alone (0700)" \
    test "$(stat -c %a "$ROOT/var/lib/netauth/offline")" = 700
check "getent passwd alice still answers" grep -q '^alice:' <<<"$(in_root getent passwd alice)"
rm -f "$ROOT/etc/pam.d/netauth-test"

# ------------------------------------------------------------- removal
section "dpkg -r (twice), then the files the package changed"
in_root dpkg -r netauth-unix
in_root dpkg -r netauth-unix
check "removed (config-files state)" test "$(in_root dpkg-query -W -f='${db:Status-Abbrev}' netauth-unix)" = "rc "
echo "--- diff -u before/nsswitch.conf after-remove/nsswitch.conf"
check "nsswitch.conf as before" diff -u "$WORK/before/nsswitch.conf" "$ROOT/etc/nsswitch.conf"
echo "--- diff -ru before/pam.d after-remove/pam.d"
check "/etc/pam.d as before" diff -ru "$WORK/before/pam.d" "$ROOT/etc/pam.d"
check "pam_netauth.so gone" test ! -e "$ROOT/lib/x86_64-linux-gnu/security/pam_netauth.so"
# The admin enabled the publish timer above. As for every Debian unit (the
# refresh timer too), removal keeps that choice for a reinstall but masks
# the unit, so nothing can start it while the package is gone; purge drops
# both (below). prerm stopped it on a running systemd (checked above).
ls -l "$ROOT/etc/systemd/system" "$ROOT/etc/systemd/system/timers.target.wants" 2>/dev/null || true
check "removal masked the publish timer (nothing starts it while the package is gone)" \
    test "$(readlink "$ROOT/etc/systemd/system/netauth-unix-publish.timer")" = /dev/null
check "removal masked the refresh timer as well" \
    test "$(readlink "$ROOT/etc/systemd/system/netauth-unix-refresh.timer")" = /dev/null
check "the published snapshot stays until purge" test -s "$ROOT/var/lib/netauth-publish/snapshot.json"

section "dpkg --purge (twice)"
in_root dpkg --purge netauth-unix
in_root dpkg --purge netauth-unix
check "purged" test -z "$(in_root dpkg-query -W -f='${db:Status-Abbrev}' netauth-unix 2>/dev/null)"
echo "--- diff -u before/nsswitch.conf after-purge/nsswitch.conf"
check "nsswitch.conf as before" diff -u "$WORK/before/nsswitch.conf" "$ROOT/etc/nsswitch.conf"
echo "--- diff -ru before/pam.d after-purge/pam.d"
check "/etc/pam.d as before" diff -ru "$WORK/before/pam.d" "$ROOT/etc/pam.d"
check "cache folder removed" test ! -e "$ROOT/var/lib/netauth"
check "published snapshot folder removed" test ! -e "$ROOT/var/lib/netauth-publish"
check "no enablement link or mask of the publish timer left (the admin had enabled it)" \
    bash -c 'for l in "$1/timers.target.wants/netauth-unix-publish.timer" "$1/netauth-unix-publish.timer"; do
                 [ ! -e "$l" ] && [ ! -L "$l" ] || exit 1; done' _ "$ROOT/etc/systemd/system"
check "systemctl: the publish timer is gone" \
    bash -c '! in_root systemctl is-enabled netauth-unix-publish.timer >/dev/null 2>&1'
check "conffile config.toml removed" test ! -e "$ROOT/etc/netauth/config.toml"
# dpkg keeps what the admin put there (the server certificate); the admin
# deletes it.
check "admin's certificate kept" test -e "$ROOT/etc/netauth/keys/tls.pem"
rm -r "$ROOT/etc/netauth"
find "$ROOT/etc" -xdev \( -type f -o -type l \) -printf '%P %l\n' | sort >"$WORK/etc-files.after-purge"
echo "--- diff of the list of files and links under /etc, before vs after purge"
check "no file or link left in /etc" diff -u "$WORK/before/etc-files" "$WORK/etc-files.after-purge"

# ---------------------------------- nsswitch.conf variants an admin may have
section "nsswitch.conf variants"
variant() { # description input expected-after-install expected-after-purge
    local what="$1" input="$2" installed="$3" purged="$4"
    printf '%s\n' "$input" >"$ROOT/etc/nsswitch.conf"
    in_root dpkg -i /tmp/netauth-unix.deb >"$WORK/variant.log" 2>&1 || { cat "$WORK/variant.log"; fail "$what: install"; return; }
    in_root dpkg -i /tmp/netauth-unix.deb >>"$WORK/variant.log" 2>&1 || { cat "$WORK/variant.log"; fail "$what: reinstall"; return; }
    if [ "$(cat "$ROOT/etc/nsswitch.conf")" = "$installed" ]; then ok "$what: installed"; else
        fail "$what: installed"; diff -u <(printf '%s\n' "$installed") "$ROOT/etc/nsswitch.conf" || true; fi
    in_root dpkg --purge netauth-unix >>"$WORK/variant.log" 2>&1 || { cat "$WORK/variant.log"; fail "$what: purge"; return; }
    in_root dpkg --purge netauth-unix >>"$WORK/variant.log" 2>&1 || true
    if [ "$(cat "$ROOT/etc/nsswitch.conf")" = "$purged" ]; then ok "$what: purged"; else
        fail "$what: purged"; diff -u <(printf '%s\n' "$purged") "$ROOT/etc/nsswitch.conf" || true; fi
}
variant "passwd: files systemd, with an initgroups line" \
    $'passwd:         files systemd\ngroup:          files [SUCCESS=merge] systemd\ninitgroups:     files systemd\nshadow:         files\nhosts:          files dns' \
    $'passwd:         files netauth systemd\ngroup:          files [SUCCESS=merge] netauth systemd\ninitgroups:     files netauth systemd\nshadow:         files\nhosts:          files dns' \
    $'passwd:         files systemd\ngroup:          files [SUCCESS=merge] systemd\ninitgroups:     files systemd\nshadow:         files\nhosts:          files dns'
variant "compat and comments" \
    $'# passwd: files\npasswd: compat # local first\ngroup: compat\nhosts: files dns' \
    $'# passwd: files\npasswd: compat netauth # local first\ngroup: compat netauth\nhosts: files dns' \
    $'# passwd: files\npasswd: compat # local first\ngroup: compat\nhosts: files dns'
variant "admin already added netauth: left alone on install, taken out on purge" \
    $'passwd: files netauth [NOTFOUND=return] systemd\ngroup: files netauth\nhosts: files dns' \
    $'passwd: files netauth [NOTFOUND=return] systemd\ngroup: files netauth\nhosts: files dns' \
    $'passwd: files systemd\ngroup: files\nhosts: files dns'
variant "files not first: netauth still right after files" \
    $'passwd: sss files systemd\ngroup:  sss files systemd\nhosts: files dns' \
    $'passwd: sss files netauth systemd\ngroup:  sss files netauth systemd\nhosts: files dns' \
    $'passwd: sss files systemd\ngroup:  sss files systemd\nhosts: files dns'
# An administrator who takes netauth out keeps it out across upgrades.
printf 'passwd: files systemd\ngroup: files systemd\n' >"$ROOT/etc/nsswitch.conf"
in_root dpkg -i /tmp/netauth-unix.deb >"$WORK/variant.log" 2>&1
sed -i 's/ netauth//' "$ROOT/etc/nsswitch.conf"
in_root dpkg -i /tmp/netauth-unix.deb >>"$WORK/variant.log" 2>&1
check "upgrade does not put back what the admin took out" \
    test "$(cat "$ROOT/etc/nsswitch.conf")" = $'passwd: files systemd\ngroup: files systemd'
in_root dpkg --purge netauth-unix >>"$WORK/variant.log" 2>&1

# ------------------------------------------- AppArmor (Ubuntu's unix_chkpwd)
section "AppArmor local addition for unix_chkpwd"
check "no profile (Debian): nothing was added to apparmor.d" test ! -e "$ROOT/etc/apparmor.d/local/unix-chkpwd"
# A stand-in for Ubuntu's profile, with its include of the local file, and
# an administrator's own line there.
mkdir -p "$ROOT/etc/apparmor.d/local"
cat >"$ROOT/etc/apparmor.d/unix-chkpwd" <<'PROFILE'
abi <abi/3.0>,
include <tunables/global>
profile unix-chkpwd /{,usr/}{,s}bin/unix_chkpwd {
  include <abstractions/base>
  include <abstractions/nameservice>
  /{,usr/}{,s}bin/unix_chkpwd mr,
  include if exists <local/unix-chkpwd>
}
PROFILE
echo '/srv/admin-rule r,' >"$ROOT/etc/apparmor.d/local/unix-chkpwd"
in_root dpkg -i /tmp/netauth-unix.deb >"$WORK/aa.log" 2>&1 || cat "$WORK/aa.log"
in_root dpkg -i /tmp/netauth-unix.deb >>"$WORK/aa.log" 2>&1 || cat "$WORK/aa.log"
cat "$ROOT/etc/apparmor.d/local/unix-chkpwd"
check "the rule reading the cache is there, once" \
    test "$(grep -c -x '/var/lib/netauth/nss.cache r,' "$ROOT/etc/apparmor.d/local/unix-chkpwd")" = 1
check "the administrator's line is kept" grep -q -x '/srv/admin-rule r,' "$ROOT/etc/apparmor.d/local/unix-chkpwd"
check "apparmor_parser accepts the profile with the addition" \
    in_root apparmor_parser -Q -K -T /etc/apparmor.d/unix-chkpwd
in_root dpkg -r netauth-unix >>"$WORK/aa.log" 2>&1 || cat "$WORK/aa.log"
check "removal takes the addition out" bash -c '! grep -q netauth "$1"' _ "$ROOT/etc/apparmor.d/local/unix-chkpwd"
check "and keeps the administrator's line" grep -q -x '/srv/admin-rule r,' "$ROOT/etc/apparmor.d/local/unix-chkpwd"
in_root dpkg --purge netauth-unix >>"$WORK/aa.log" 2>&1 || true
rm -f "$ROOT/etc/apparmor.d/unix-chkpwd" "$ROOT/etc/apparmor.d/local/unix-chkpwd"

printf '\npackage install test: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]
