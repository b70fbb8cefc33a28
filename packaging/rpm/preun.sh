# %preun of netauth-unix. $1: 0 when the package is erased, 1 or more on upgrade.
if [ "$1" -eq 0 ]; then
    # As %systemd_preun does.
    systemctl --no-reload disable --now netauth-unix-refresh.timer netauth-unix-refresh.service >/dev/null 2>&1 || :
    # The publish timer is off unless the admin enabled it; if so, it goes too.
    systemctl --no-reload disable --now netauth-unix-publish.timer netauth-unix-publish.service >/dev/null 2>&1 || :
    if command -v authselect >/dev/null 2>&1 && authselect current --raw 2>/dev/null | grep -q '^custom/netauth'; then
        echo "netauth-unix: warning: the authselect profile in use, custom/netauth, refers to pam_netauth and nss_netauth." >&2
        echo "netauth-unix: select another one, e.g.: authselect select local (or sssd) --force" >&2
    fi
fi
