//! The module driven hard through glibc's `_r` functions and its own entry
//! points (the `nss_probe` helper), in a private mount namespace.

use netauth_cache::encode_with_block_size;
use netauth_e2e::nss::{
    encode_content, generated_content, run_in_namespace, sample_content, NsRun,
    NSSWITCH_NETAUTH_ONLY,
};
use std::process::Output;

const PROBE: &str = env!("CARGO_BIN_EXE_nss_probe");

fn probe(cache: Option<&[u8]>, files: &[(&str, &[u8])], args: &[&str]) -> Output {
    run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_NETAUTH_ONLY,
            cache,
            files,
            etc_group_extra: None,
        },
        PROBE,
        args,
    )
}

fn assert_probe_ok(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "probe failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("ok ")), "{stdout}");
}

#[test]
fn every_buffer_size_gives_erange_then_the_entry() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let cache = encode_content(&sample_content());
    let out = probe(
        Some(&cache),
        &[("expected", &cache)],
        &["buffers", "{scratch}/expected"],
    );
    assert_probe_ok(&out);
}

#[test]
fn missing_cache_is_unavailable() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let out = probe(None, &[], &["missing"]);
    assert_probe_ok(&out);
}

/// A cache of the previous format (version 2, written by the version 2
/// writer, holding na_alice): refused as a whole, every lookup UNAVAIL
/// until a refresh writes the current format.
#[test]
fn a_version_2_cache_is_unavailable() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let v2 = include_bytes!("../../../netauth-cache/tests/data/version2.cache");
    let out = probe(Some(v2), &[], &["unavailable"]);
    assert_probe_ok(&out);
}

#[test]
fn eight_threads_see_old_or_new_entries_while_the_cache_is_replaced() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let a = encode_content(&generated_content(0, 250, "A"));
    let b = encode_content(&generated_content(50, 250, "B"));
    let out = probe(
        Some(&a),
        &[("a", &a), ("b", &b)],
        &["threads", "{scratch}/a", "{scratch}/b", "300"],
    );
    assert_probe_ok(&out);
}

/// The property the module's per-lookup `stat` used to buy, kept without
/// it: a cache replaced by the writer is noticed by the very next lookup in
/// every process and thread that mapped the old one (the writer marks the
/// old file); one replaced without the mark within the re-check interval.
#[test]
fn a_replaced_cache_is_noticed_by_the_next_lookup_everywhere() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let a = encode_content(&generated_content(0, 250, "A"));
    let b = encode_content(&generated_content(50, 250, "B"));
    let c = encode_content(&generated_content(100, 250, "C"));
    let out = probe(
        Some(&a),
        &[("a", &a), ("b", &b), ("c", &c)],
        &["replaced", "{scratch}/a", "{scratch}/b", "{scratch}/c"],
    );
    assert_probe_ok(&out);
}

/// The sample cache with 64-byte checksum blocks: a small file with many
/// blocks, so that damage in one leaves lookups elsewhere answering.
fn small_block_sample() -> Vec<u8> {
    encode_with_block_size(&sample_content(), 64).expect("encode the test cache")
}

#[test]
fn every_truncation_and_random_corruption_is_unavailable_or_right() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    for cache in [encode_content(&sample_content()), small_block_sample()] {
        let out = probe(
            Some(&cache),
            &[("good", &cache)],
            &["corrupt", "{scratch}/good", "3000"],
        );
        assert_probe_ok(&out);
    }
}

#[test]
fn a_damaged_block_fails_only_the_lookups_that_read_it() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let generated = encode_content(&generated_content(0, 250, "A"));
    for cache in [small_block_sample(), generated] {
        let out = probe(
            Some(&cache),
            &[("good", &cache)],
            &["blocks", "{scratch}/good"],
        );
        assert_probe_ok(&out);
    }
}

#[test]
fn forks_while_threads_look_up_do_not_hang() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let cache = encode_content(&sample_content());
    let out = probe(
        Some(&cache),
        &[("expected", &cache)],
        &["fork", "{scratch}/expected", "300"],
    );
    assert_probe_ok(&out);
}

/// The truncation and corruption run again under valgrind: no invalid read
/// or write anywhere in the module (valgrind exits 99 on any error). Small
/// blocks, so that lookups also run on files damaged elsewhere.
#[test]
fn corruption_under_valgrind_has_no_memory_errors() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let cache = small_block_sample();
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_NETAUTH_ONLY,
            cache: Some(&cache),
            files: &[("good", &cache)],
            etc_group_extra: None,
        },
        "valgrind",
        &[
            "--error-exitcode=99",
            "--track-origins=yes",
            PROBE,
            "corrupt",
            "{scratch}/good",
            "100",
        ],
    );
    assert_probe_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{stderr}"
    );
}
