# %post of netauth-unix. $1: 1 on first install, 2 or more on upgrade.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
    # As %systemd_post does: the distribution's preset policy decides whether
    # the timer is enabled; README.authselect says how to enable it.
    systemctl --no-reload preset netauth-unix-refresh.timer >/dev/null 2>&1 || :
    # No preset for netauth-unix-publish.timer: a preset policy of "enable *"
    # would turn it on, and only the publishing host wants it.
    echo "netauth-unix: PAM and NSS are not changed on RPM systems (authselect owns them)."
    echo "netauth-unix: next steps: /usr/share/doc/netauth-unix/README.authselect"
fi
if [ "$1" -ge 2 ] && [ -d /run/systemd/system ]; then
    # On an upgrade, refresh at once: the new nss_netauth refuses a cache of
    # an older format (UNAVAIL) until a refresh writes the current one.
    systemctl --no-block start netauth-unix-refresh.service >/dev/null 2>&1 || :
fi
