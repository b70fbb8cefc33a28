#!/usr/bin/env bash
# The project's main job on its embedded default: builds the modules, starts
# the NetAuth test server with the sample directory (TLS on), runs the
# refresh, then, in a private mount namespace (nothing of the host changes),
# resolves NetAuth users through glibc NSS and logs them in through real PAM.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/setup.sh
if [ "$(id -u)" != 0 ]; then
  echo "demo: needs root (for the private mount namespace)" >&2
  exit 1
fi

echo "== building"
cargo build --quiet -p netauth-testserver -p netauth-unix -p nss_netauth -p pam_netauth
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug

work=$(mktemp -d /tmp/netauth-demo.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting the NetAuth test server (sample directory, TLS)"
mkdir -p "$work/tls" "$work/cache" "$work/pam.d" "$work/lib"
"$target/netauth-testserver" --fixture scripts/demo-directory.toml \
  --tls-dir "$work/tls" --ignore-stdin >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^LISTENING' "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
addr=$(sed -n 's/^LISTENING //p' "$work/server.out")
[ -n "$addr" ] || { echo "demo: the test server did not start:" >&2; cat "$work/server.err" >&2; exit 1; }
port=${addr##*:}
echo "   listening on $addr"

# NetAuth's own config.toml, plus our [unix] tables.
cat >"$work/config.toml" <<EOF
[core]
server = "localhost"
port = $port

[tls]
certificate = "$work/tls/tls.pem"

[unix]
cache_dir = "$work/cache"

[unix.pam]
allow_groups = ["people", "engineering"]
EOF

echo "== netauth-unix refresh"
"$target/netauth-unix" refresh --config "$work/config.toml"
echo "== netauth-unix status"
"$target/netauth-unix" status --config "$work/config.toml"

# The test profile: NetAuth after files, as the package installs it.
cat >"$work/nsswitch.conf" <<EOF
passwd: files netauth
group:  files netauth
shadow: files
hosts:  files
EOF
cat >"$work/pam.d/netauth-demo" <<EOF
auth     required $target/libpam_netauth.so config=$work/config.toml
account  required $target/libpam_netauth.so config=$work/config.toml
password required $target/libpam_netauth.so config=$work/config.toml
session  required $target/libpam_netauth.so config=$work/config.toml
EOF
ln -s "$target/libnss_netauth.so" "$work/lib/libnss_netauth.so.2"

cat >"$work/inside.sh" <<'EOF'
set -u
work=$1 phase=$2
mount -t tmpfs tmpfs /var/lib
mkdir -p /var/lib/netauth
mount --bind "$work/cache" /var/lib/netauth
mount --bind "$work/nsswitch.conf" /etc/nsswitch.conf
mount --bind "$work/pam.d" /etc/pam.d
export LD_LIBRARY_PATH=$work/lib
show() { echo "\$ $*"; "$@"; echo "   (exit $?)"; }
if [ "$phase" = outage ]; then
  echo "== the server is down: NSS still answers from the cache"
  show id alice
  echo "-- alice logs in: PAM_AUTHINFO_UNAVAIL ('Authentication information cannot be recovered')"
  echo alice-secret | pamtester netauth-demo alice authenticate; echo "   (exit $?)"
  exit 0
fi
echo "== NSS, served from the cache"
show getent passwd alice
show getent passwd 1002
show getent group engineering
show id alice
show id dave
show getent passwd
echo "== PAM logins through real libpam"
echo "-- alice, right password (member of people): expect success"
echo alice-secret | pamtester netauth-demo alice authenticate acct_mgmt; echo "   (exit $?)"
echo "-- alice, wrong password: expect failure"
echo not-her-secret | pamtester netauth-demo alice authenticate; echo "   (exit $?)"
echo "-- erin, right password but locked: expect failure"
echo erin-secret | pamtester netauth-demo erin authenticate; echo "   (exit $?)"
echo "-- carol, right password, not in people or engineering: expect account refused"
echo carol-secret | pamtester netauth-demo carol authenticate acct_mgmt; echo "   (exit $?)"
EOF
unshare -m --propagation private bash "$work/inside.sh" "$work" up
echo "== stopping the server"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
unshare -m --propagation private bash "$work/inside.sh" "$work" outage
echo "== done: the host's /etc and /var/lib were never touched"
