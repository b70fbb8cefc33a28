use super::*;
use netauth_cache::clean::LocalAccounts;
use netauth_core::config::refresh::RefreshSettings;
use std::collections::HashSet;

fn entity(id: &str, number: i32, groups: &[&str]) -> SourceEntity {
    SourceEntity {
        id: id.to_owned(),
        number: Some(number),
        primary_group: Some("staff".into()),
        gecos: Some(format!("{id} \"quoted\" \u{e9}")),
        groups: groups.iter().map(|&g| g.into()).collect(),
        keys: vec!["ssh-ed25519:AAAA b".to_owned(), "ssh-rsa:BBBB".to_owned()],
        locked: id == "carol",
        ..Default::default()
    }
}

fn group(name: &str, number: i32, expansions: &[&str]) -> SourceGroup {
    SourceGroup {
        name: name.to_owned(),
        number: Some(number),
        expansions: expansions.iter().map(|e| e.to_string()).collect(),
    }
}

fn directory() -> (Vec<SourceEntity>, Vec<SourceGroup>) {
    (
        vec![
            entity("bob", 1002, &["dev", "staff"]),
            entity("alice", 1001, &["staff"]),
            entity("carol", 1003, &["ops"]),
        ],
        vec![
            group("staff", 2000, &[]),
            group("dev", 2001, &["INCLUDE:ops"]),
            group("ops", 2002, &[]),
        ],
    )
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn sample() -> Snapshot {
    let (e, g) = directory();
    let mut s = Snapshot::from_fetched(e, g, "netauth.example:1729".to_owned());
    s.sequence = 7;
    s.generated_at = 1_700_000_000;
    s
}

#[test]
fn the_same_directory_in_any_order_gives_the_same_bytes() {
    let (mut e, mut g) = directory();
    let first = Snapshot::from_fetched(e.clone(), g.clone(), "s".to_owned()).encode();
    e.reverse();
    g.reverse();
    for x in &mut e {
        x.groups.reverse();
    }
    let second = Snapshot::from_fetched(e, g, "s".to_owned()).encode();
    assert_eq!(first, second);
    // One entity and one group per line, for diffs and rsync.
    let text = String::from_utf8(first).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("{\"id\"")).count(), 3);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("{\"name\"")).count(),
        3
    );
    assert!(text.ends_with("]}\n"));
}

#[test]
fn a_change_anywhere_changes_the_directory() {
    let a = sample();
    let (mut e, g) = directory();
    e[0].keys.pop();
    let b = Snapshot::from_fetched(e, g, "other".to_owned());
    assert!(!a.same_directory(&b));
    let (e, g) = directory();
    let c = Snapshot::from_fetched(e, g, "other".to_owned());
    // Sequence, time and server are not the directory.
    assert!(a.same_directory(&c));
}

#[test]
fn signed_bytes_round_trip() {
    let snap = sample();
    let bytes = snap.encode();
    let sig = sign(&bytes, &key(1));
    let back = verify_and_decode(&bytes, &sig, &key(1).verifying_key()).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.entities[0].id, "alice");
    assert!(back.entities.iter().any(|e| e.locked && e.id == "carol"));
    // dev includes ops: carol is an effective member of dev.
    let dev = back.groups.iter().position(|g| g.name == "dev").unwrap();
    let carol = back.entities.iter().position(|e| e.id == "carol").unwrap() as u32;
    assert!(back.members[dev].contains(&carol));
}

#[test]
fn the_memberships_are_the_ones_the_refresh_computes() {
    let snap = sample();
    let computed = build::effective_memberships(&snap.entities, &snap.groups);
    assert_eq!(snap.members, computed.members);
    let settings = RefreshSettings {
        min_gid: 1000,
        ..RefreshSettings::default()
    };
    let local = LocalAccounts::default();
    let shells = HashSet::new();
    let direct = build::map_directory(&snap.entities, &snap.groups, &settings, &local, &shells);
    let with = build::map_directory_with(
        &snap.entities,
        &snap.groups,
        computed,
        &settings,
        &local,
        &shells,
    );
    assert_eq!(direct.users, with.users);
    assert_eq!(direct.groups, with.groups);
    assert_eq!(direct.user_groups, with.user_groups);
    assert_eq!(direct.user_keys, with.user_keys);
    assert_eq!(direct.users.len(), 3);
}

#[test]
fn any_flipped_byte_is_refused() {
    let bytes = sample().encode();
    let sig = sign(&bytes, &key(1));
    let public = key(1).verifying_key();
    for at in [0, 10, bytes.len() / 2, bytes.len() - 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        assert_eq!(
            verify_and_decode(&bad, &sig, &public),
            Err(SnapshotError::BadSignature),
            "byte {at}"
        );
    }
    let mut bad_sig = BASE64
        .decode(String::from_utf8(sig.clone()).unwrap().trim())
        .unwrap();
    bad_sig[5] ^= 0x80;
    let mut bad_sig = BASE64.encode(bad_sig).into_bytes();
    bad_sig.push(b'\n');
    assert_eq!(
        verify_and_decode(&bytes, &bad_sig, &public),
        Err(SnapshotError::BadSignature)
    );
}

#[test]
fn another_key_is_refused() {
    let bytes = sample().encode();
    let sig = sign(&bytes, &key(2));
    assert_eq!(
        verify_and_decode(&bytes, &sig, &key(1).verifying_key()),
        Err(SnapshotError::BadSignature)
    );
}

#[test]
fn nothing_is_parsed_before_the_signature_holds() {
    let public = key(1).verifying_key();
    // Garbage that would fail parsing fails on the signature first.
    let junk = b"{not json".to_vec();
    let other = sign(b"something else", &key(1));
    assert_eq!(
        verify_and_decode(&junk, &other, &public),
        Err(SnapshotError::BadSignature)
    );
    // Signed garbage gets to the parser, which refuses it.
    let signed = sign(&junk, &key(1));
    assert!(matches!(
        verify_and_decode(&junk, &signed, &public),
        Err(SnapshotError::Malformed(_))
    ));
    for sig in [&b""[..], b"not base64!\n", b"AAAA\n", &[b'A'; 400][..]] {
        assert_eq!(
            verify_and_decode(&sample().encode(), sig, &public),
            Err(SnapshotError::BadSignatureFile)
        );
    }
}

#[test]
fn signed_but_inconsistent_snapshots_are_refused() {
    let public = key(1).verifying_key();
    let check = |text: &str| {
        let sig = sign(text.as_bytes(), &key(1));
        verify_and_decode(text.as_bytes(), &sig, &public)
    };
    let head = r#"{"format":"netauth-unix-snapshot","version":1,"sequence":1,"generated_at":1,"server":"s","#;
    let ok =
        format!(r#"{head}"entities":[{{"id":"a"}}],"groups":[{{"name":"g","members":[0]}}]}}"#);
    assert!(check(&ok).is_ok());
    for (text, what) in [
        (
            format!(r#"{head}"entities":[{{"id":"a"}}],"groups":[{{"name":"g","members":[1]}}]}}"#),
            "member index out of range",
        ),
        (
            format!(
                r#"{head}"entities":[{{"id":"a"}},{{"id":"b"}}],"groups":[{{"name":"g","members":[1,0]}}]}}"#
            ),
            "members not sorted",
        ),
        (
            format!(r#"{head}"entities":[{{"id":"a","uid":5}}],"groups":[]}}"#),
            "unknown field",
        ),
        (
            ok.replace("netauth-unix-snapshot", "other"),
            "another format",
        ),
    ] {
        assert!(
            matches!(check(&text), Err(SnapshotError::Malformed(_))),
            "{what}: {:?}",
            check(&text)
        );
    }
    assert_eq!(
        check(&ok.replace("\"version\":1", "\"version\":2")),
        Err(SnapshotError::UnknownVersion(2))
    );
}

#[test]
fn keys_round_trip_in_their_text_forms() {
    let k = key(9);
    let public = format_public_key(&k.verifying_key());
    assert!(public.starts_with("ed25519:"));
    assert_eq!(parse_public_key(&public).unwrap(), k.verifying_key());
    for bad in [
        "AAAA",
        "ed25519:!!",
        "ed25519:AAAA",
        &public.replace("ed25519:", "rsa:"),
    ] {
        assert!(
            matches!(parse_public_key(bad), Err(SnapshotError::BadKey(_))),
            "{bad}"
        );
    }
    let private = format_private_key(&k);
    assert_eq!(
        parse_private_key(private.as_bytes()).unwrap().to_bytes(),
        k.to_bytes()
    );
    let e = parse_private_key(b"ed25519-private:AAAA\n").unwrap_err();
    assert!(!e.to_string().contains("AAAA"), "{e}");
    assert!(parse_private_key(public.as_bytes()).is_err());
}
