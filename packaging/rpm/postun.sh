# %postun of netauth-unix. $1: 0 when the package is erased, 1 or more on upgrade.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
    # As %systemd_postun_with_restart does.
    systemctl try-restart netauth-unix-refresh.timer netauth-unix-publish.timer >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
    # The cache written by the refresh; nothing reads it any more.
    rm -rf /var/lib/netauth
    # The snapshot the publish timer wrote (only on a publishing host): no
    # longer renewed, the hosts would refuse it once snapshot_max_age_s passed.
    rm -rf /var/lib/netauth-publish
fi
