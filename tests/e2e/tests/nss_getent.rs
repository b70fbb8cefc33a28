//! `getent` and `id` through real glibc NSS, loading the freshly built
//! module, in a private mount namespace with a test cache at the fixed path.

use netauth_e2e::nss::{
    encode_content, group_line, passwd_line, reseal, run_in_namespace, sample_content, NsRun,
    NSSWITCH_FILES_THEN_NETAUTH, NSSWITCH_NETAUTH_ONLY, UNNAMED_PRIMARY_GIDS,
};
use std::process::Output;

fn getent(cache: Option<&[u8]>, nsswitch: &str, args: &[&str]) -> Output {
    run_in_namespace(
        &NsRun {
            nsswitch,
            cache,
            files: &[],
            etc_group_extra: None,
        },
        "getent",
        args,
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn assert_ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

#[test]
fn getent_passwd_and_group_by_name_and_id() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    for u in &content.users {
        let by_name = assert_ok(&getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["passwd", &u.name],
        ));
        assert_eq!(by_name.trim_end(), passwd_line(u));
        let by_uid = assert_ok(&getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["passwd", &u.uid.to_string()],
        ));
        assert_eq!(by_uid.trim_end(), passwd_line(u));
    }
    for g in &content.groups {
        let by_name = assert_ok(&getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["group", &g.name],
        ));
        assert_eq!(by_name.trim_end(), group_line(g));
        let by_gid = assert_ok(&getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["group", &g.gid.to_string()],
        ));
        assert_eq!(by_gid.trim_end(), group_line(g));
    }
}

#[test]
fn unknown_names_and_ids_are_not_found() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let cache = encode_content(&sample_content());
    for args in [
        &["passwd", "na_nobody"][..],
        &["passwd", "79999"],
        &["group", "na_nogroup"],
        &["group", "79999"],
    ] {
        let out = getent(Some(&cache), NSSWITCH_FILES_THEN_NETAUTH, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn enumeration_lists_every_cached_entry_once() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    // Only our module: the listing is exactly the cache, in its order.
    let users = assert_ok(&getent(Some(&cache), NSSWITCH_NETAUTH_ONLY, &["passwd"]));
    let expected: Vec<String> = content.users.iter().map(passwd_line).collect();
    assert_eq!(users.lines().collect::<Vec<_>>(), expected);
    let groups = assert_ok(&getent(Some(&cache), NSSWITCH_NETAUTH_ONLY, &["group"]));
    let expected: Vec<String> = content.groups.iter().map(group_line).collect();
    assert_eq!(groups.lines().collect::<Vec<_>>(), expected);

    // After the host's files: each cached line still appears exactly once.
    let users = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_FILES_THEN_NETAUTH,
        &["passwd"],
    ));
    assert!(
        users.lines().any(|l| l.starts_with("root:")),
        "files entries missing"
    );
    for u in &content.users {
        let line = passwd_line(u);
        assert_eq!(users.lines().filter(|l| *l == line).count(), 1, "{line}");
    }
    let groups = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_FILES_THEN_NETAUTH,
        &["group"],
    ));
    for g in &content.groups {
        let line = group_line(g);
        assert_eq!(groups.lines().filter(|l| *l == line).count(), 1, "{line}");
    }
}

#[test]
fn id_lists_every_effective_group() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    for u in &content.users {
        let out = run_in_namespace(
            &NsRun {
                nsswitch: NSSWITCH_FILES_THEN_NETAUTH,
                cache: Some(&cache),
                files: &[],
                etc_group_extra: None,
            },
            "id",
            &[&u.name],
        );
        let text = assert_ok(&out);
        // `id` prints a gid without a group as the bare number.
        let label = |gid: u32| match content.groups.iter().find(|g| g.gid == gid) {
            Some(g) => format!("{gid}({})", g.name),
            None => {
                assert!(UNNAMED_PRIMARY_GIDS.contains(&gid), "{gid}");
                gid.to_string()
            }
        };
        let mut expected_groups = vec![u.gid];
        for &gid in content
            .user_groups
            .get(&u.name)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            if !expected_groups.contains(&gid) {
                expected_groups.push(gid);
            }
        }
        let listed: Vec<String> = text
            .trim_end()
            .split_once(" groups=")
            .expect("groups= in id output")
            .1
            .split(',')
            .map(str::to_owned)
            .collect();
        let mut expected: Vec<String> = expected_groups.iter().map(|&g| label(g)).collect();
        let mut listed_sorted = listed.clone();
        listed_sorted.sort();
        expected.sort();
        assert_eq!(listed_sorted, expected, "id {}: {text}", u.name);
        assert!(
            text.starts_with(&format!("uid={}({}) gid={} ", u.uid, u.name, label(u.gid))),
            "{text}"
        );
    }
}

#[test]
fn getent_initgroups_lists_the_cached_groups() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    let out = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_FILES_THEN_NETAUTH,
        &["initgroups", "na_alice"],
    ));
    let mut gids: Vec<u32> = out
        .split_whitespace()
        .skip(1)
        .map(|g| g.parse().expect("numeric gid"))
        .collect();
    gids.sort();
    // getent initgroups passes the user's primary gid, so glibc lists it
    // without the module reporting it again.
    assert_eq!(gids, vec![71001, 71003, 71004]);
}

#[test]
fn missing_cache_is_not_found_without_crash() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    for nsswitch in [NSSWITCH_FILES_THEN_NETAUTH, NSSWITCH_NETAUTH_ONLY] {
        let out = getent(None, nsswitch, &["passwd", &content.users[0].name]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = getent(None, nsswitch, &["group", "71001"]);
        assert_eq!(out.status.code(), Some(2));
    }
    // Enumeration without a cache: just the files entries, no error.
    let out = getent(None, NSSWITCH_FILES_THEN_NETAUTH, &["passwd"]);
    let text = assert_ok(&out);
    assert!(text.lines().any(|l| l.starts_with("root:")));
    assert!(!text.contains("na_"));
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_FILES_THEN_NETAUTH,
            cache: None,
            files: &[],
            etc_group_extra: None,
        },
        "id",
        &["na_alice"],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn corrupt_or_foreign_cache_is_not_found_without_crash() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let good = encode_content(&sample_content());
    // A flipped bit in na_alice's record: the block a lookup of her reads
    // (blocks it does not read are checked when another lookup reads them).
    let mut flipped = good.clone();
    let at = netauth_test_support::offset_of(&good, b"/home/na_alice");
    flipped[at + 3] ^= 0x10;
    let truncated = &good[..good.len() - 1];
    let foreign = b"root:x:0:0:root:/root:/bin/bash\n".to_vec();
    for bad in [&flipped[..], truncated, &foreign[..], &[][..]] {
        let out = getent(
            Some(bad),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["passwd", "na_alice"],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = getent(Some(bad), NSSWITCH_FILES_THEN_NETAUTH, &["group"]);
        assert_eq!(out.status.code(), Some(0));
        assert!(!stdout(&out).contains("na_"));
    }
}

/// Why the module's docs say "no `initgroups:` line" (or one with
/// `[SUCCESS=continue]`): glibc stops at the first initgroups service that
/// succeeds, so a NetAuth user who is also in a local group would lose the
/// NetAuth groups. With only `group:` lines, glibc asks every service.
#[test]
fn initgroups_merges_local_and_cached_groups_unless_an_initgroups_line_stops_it() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    let etc_group = "na_localgrp:x:60123:na_alice\n";
    let id_groups = |nsswitch: &str| -> Vec<String> {
        let out = run_in_namespace(
            &NsRun {
                nsswitch,
                cache: Some(&cache),
                files: &[],
                etc_group_extra: Some(etc_group),
            },
            "id",
            &["-Gn", "na_alice"],
        );
        let mut groups: Vec<String> = assert_ok(&out)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        groups.sort();
        groups
    };
    let all = vec!["na_all", "na_devs", "na_localgrp", "na_staff"];
    assert_eq!(id_groups(NSSWITCH_FILES_THEN_NETAUTH), all);
    let continuing =
        format!("{NSSWITCH_FILES_THEN_NETAUTH}initgroups: files [SUCCESS=continue] netauth\n");
    assert_eq!(id_groups(&continuing), all);
    let stopping = format!("{NSSWITCH_FILES_THEN_NETAUTH}initgroups: files netauth\n");
    assert_eq!(id_groups(&stopping), vec!["na_localgrp", "na_staff"]);
}

/// A FIFO at the cache path (nobody writing to it) must not block a lookup:
/// the module opens without blocking and refuses what is not a regular file.
#[test]
fn fifo_at_the_cache_path_is_refused_without_blocking() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let script = format!(
        "mkfifo -m 0644 /var/lib/netauth/nss.cache && \
         timeout 10 getent passwd {}; echo \"exit=$?\"",
        content.users[0].name
    );
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_NETAUTH_ONLY,
            cache: None,
            files: &[],
            etc_group_extra: None,
        },
        "sh",
        &["-c", &script],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // getent's "not found" is 2; timeout's "killed after 10 s" would be 124.
    assert_eq!(
        text.trim(),
        "exit=2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The host's own groups (Debian's users 100, staff 50, ...) keep their
/// names, and a primary gid the cache gives no group stays unnamed: neither
/// module invents an answer for it.
#[test]
fn local_groups_keep_their_names_and_unnamed_primary_gids_stay_unnamed() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let cache = encode_content(&content);
    let host_group = std::fs::read_to_string("/etc/group").expect("read /etc/group");
    for name in ["users", "staff"] {
        let line = host_group
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .unwrap_or_else(|| panic!("a stock Debian /etc/group has {name}"));
        let out = assert_ok(&getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["group", name],
        ));
        assert_eq!(out.trim_end(), line);
    }
    for gid in UNNAMED_PRIMARY_GIDS {
        let out = getent(
            Some(&cache),
            NSSWITCH_FILES_THEN_NETAUTH,
            &["group", &gid.to_string()],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    }
    let erin = &content.users[4];
    assert_eq!(erin.gid, UNNAMED_PRIMARY_GIDS[0]);
    let out = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_FILES_THEN_NETAUTH,
        &["passwd", &erin.name],
    ));
    assert_eq!(out.trim_end(), passwd_line(erin));
}

/// A crafted cache, checksums right, whose na_bob has a `:` in its home
/// (a second passwd line hidden in one field): lookups of na_bob fail, an
/// enumeration lists every other entry and skips it, and nothing else
/// changes.
#[test]
fn an_entry_the_writer_never_writes_is_refused_and_skipped_by_enumeration() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let content = sample_content();
    let mut cache = encode_content(&content);
    let at = netauth_test_support::offset_of(&cache, b"/home/na_bob");
    cache[at + 8] = b':';
    reseal(&mut cache);

    for args in [&["passwd", "na_bob"][..], &["passwd", "70002"]] {
        let out = getent(Some(&cache), NSSWITCH_NETAUTH_ONLY, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(out.stdout.is_empty());
    }
    let listed = assert_ok(&getent(Some(&cache), NSSWITCH_NETAUTH_ONLY, &["passwd"]));
    let expected: Vec<String> = content
        .users
        .iter()
        .filter(|u| u.name != "na_bob")
        .map(passwd_line)
        .collect();
    assert_eq!(listed.lines().collect::<Vec<_>>(), expected);
    // The others answer as before, groups too.
    let alice = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_NETAUTH_ONLY,
        &["passwd", "na_alice"],
    ));
    assert_eq!(alice.trim_end(), passwd_line(&content.users[0]));
    let staff = assert_ok(&getent(
        Some(&cache),
        NSSWITCH_NETAUTH_ONLY,
        &["group", "na_staff"],
    ));
    assert_eq!(staff.trim_end(), group_line(&content.groups[0]));
}
