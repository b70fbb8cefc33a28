//! What a built shared object asks of the system, read with `readelf`.

use std::path::Path;
use std::process::Command;

/// `readelf ARGS library`'s output.
fn readelf(library: &Path, args: &[&str]) -> String {
    let out = Command::new("readelf")
        .args(args)
        .arg(library)
        .output()
        .expect("run readelf");
    assert!(out.status.success(), "readelf {args:?} failed");
    String::from_utf8(out.stdout).expect("UTF-8 readelf output")
}

/// The libraries `library` names as NEEDED, in order.
pub fn needed(library: &Path) -> Vec<String> {
    readelf(library, &["-d", "-W"])
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split('[').nth(1)?.trim_end_matches(']').to_owned()))
        .collect()
}

/// The newest `GLIBC_2.x` symbol version `library` needs: x.
pub fn newest_glibc_needed(library: &Path) -> u32 {
    readelf(library, &["-V", "-W"])
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("GLIBC_2."))
        .filter_map(|minor| minor.split('.').next()?.parse::<u32>().ok())
        .max()
        .expect("versioned glibc symbols")
}

/// The names of the symbols `library` defines and exports.
pub fn exported(library: &Path) -> Vec<String> {
    // `readelf --dyn-syms -W`: Num: Value Size Type Bind Vis Ndx Name.
    let mut names: Vec<String> = readelf(library, &["--dyn-syms", "-W"])
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let defined = f.len() >= 8 && f[6] != "UND" && f[6] != "Ndx";
            let visible = f.get(4).is_some_and(|b| *b == "GLOBAL" || *b == "WEAK");
            (defined && visible).then(|| f[7].split('@').next().unwrap_or(f[7]).to_owned())
        })
        .collect();
    names.sort();
    names
}
