//! Module arguments from the PAM stack line (`pam_netauth.so config=... use_first_pass`).

use std::path::PathBuf;

/// Where NetAuth's shared configuration lives unless `config=` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/netauth/config.toml";

/// How the module obtains a password it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PassSource {
    /// Always ask through the PAM conversation.
    #[default]
    Prompt,
    /// Take the token an earlier module stored; ask only when there is none.
    TryFirst,
    /// Take the token an earlier module stored; fail when there is none.
    UseFirst,
}

/// What happens to a user the on-disk cache does not list (`uncached_users=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UncachedUsers {
    /// Not a NetAuth user: PAM_IGNORE, nothing prompted, nothing sent.
    #[default]
    Ignore,
    /// Ask the server about them too (`ignore_unknown_user` then decides
    /// what a name the server does not know gets).
    Ask,
}

/// Every argument the parser understands, as the man page spells it.
pub const KNOWN_ARGUMENTS: &[&str] = &[
    "config=",
    "use_first_pass",
    "try_first_pass",
    "use_authtok",
    "ignore_unknown_user",
    "uncached_users=ignore",
    "uncached_users=ask",
    "debug",
];

/// Parsed module arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleArgs {
    pub config: PathBuf,
    pub pass_source: PassSource,
    /// Password stack: take the new password from PAM_AUTHTOK (set by an
    /// earlier module such as pam_pwquality) instead of prompting.
    pub use_authtok: bool,
    /// A user the server does not know gets PAM_IGNORE, unless the cache
    /// lists it (then it was deleted: refused). Matters with
    /// `uncached_users=ask` only: otherwise an unlisted user is ignored anyway.
    pub ignore_unknown_user: bool,
    pub uncached_users: UncachedUsers,
    pub debug: bool,
    /// Arguments we did not understand; logged by the caller, otherwise ignored.
    pub unknown: Vec<String>,
}

impl Default for ModuleArgs {
    fn default() -> Self {
        ModuleArgs {
            config: PathBuf::from(DEFAULT_CONFIG_PATH),
            pass_source: PassSource::Prompt,
            use_authtok: false,
            ignore_unknown_user: false,
            uncached_users: UncachedUsers::Ignore,
            debug: false,
            unknown: Vec::new(),
        }
    }
}

impl ModuleArgs {
    /// Parses the arguments; never fails: anything unknown is collected in
    /// `unknown`. `use_first_pass` wins over `try_first_pass` (the stricter one).
    pub fn parse<S: AsRef<str>>(args: &[S]) -> ModuleArgs {
        let mut parsed = ModuleArgs::default();
        for arg in args {
            let arg = arg.as_ref();
            match arg {
                "use_first_pass" => parsed.pass_source = PassSource::UseFirst,
                "try_first_pass" => {
                    if parsed.pass_source != PassSource::UseFirst {
                        parsed.pass_source = PassSource::TryFirst;
                    }
                }
                "use_authtok" => parsed.use_authtok = true,
                "ignore_unknown_user" => parsed.ignore_unknown_user = true,
                "uncached_users=ignore" => parsed.uncached_users = UncachedUsers::Ignore,
                "uncached_users=ask" => parsed.uncached_users = UncachedUsers::Ask,
                "debug" => parsed.debug = true,
                _ => match arg.strip_prefix("config=") {
                    Some(path) if !path.is_empty() => parsed.config = PathBuf::from(path),
                    _ => parsed.unknown.push(arg.to_owned()),
                },
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument the parser knows is in KNOWN_ARGUMENTS, and the man
    /// page describes each of them, and no other.
    #[test]
    fn known_arguments_parse_and_match_the_man_page() {
        for arg in KNOWN_ARGUMENTS {
            let arg = if *arg == "config=" { "config=/x" } else { arg };
            assert!(ModuleArgs::parse(&[arg]).unknown.is_empty(), "{arg}");
        }
        let page = include_str!("../../../packaging/common/pam_netauth.8");
        let described: Vec<String> = page
            .split(".SH OPTIONS")
            .nth(1)
            .and_then(|rest| rest.split("\n.SH ").next())
            .unwrap_or("")
            .split(".TP\n")
            .skip(1)
            .filter_map(|item| item.lines().next())
            .map(|line| {
                // ".B use_first_pass", ".BI config= PATH", ".B uncached_users=ask"
                let name = line.split_whitespace().nth(1).unwrap_or("");
                name.replace("\\", "")
            })
            .collect();
        let mut expected: Vec<String> = KNOWN_ARGUMENTS.iter().map(|a| a.to_string()).collect();
        let mut described_sorted = described.clone();
        expected.sort();
        described_sorted.sort();
        assert_eq!(
            described_sorted, expected,
            "OPTIONS of pam_netauth.8: {described:?}"
        );
    }

    #[test]
    fn defaults_without_arguments() {
        let args = ModuleArgs::parse::<&str>(&[]);
        assert_eq!(args, ModuleArgs::default());
        assert_eq!(args.config, PathBuf::from("/etc/netauth/config.toml"));
        assert_eq!(args.pass_source, PassSource::Prompt);
    }

    #[test]
    fn every_known_argument() {
        let args = ModuleArgs::parse(&[
            "config=/tmp/x/config.toml",
            "try_first_pass",
            "use_authtok",
            "ignore_unknown_user",
            "uncached_users=ask",
            "debug",
        ]);
        assert_eq!(args.config, PathBuf::from("/tmp/x/config.toml"));
        assert_eq!(args.pass_source, PassSource::TryFirst);
        assert!(args.use_authtok && args.ignore_unknown_user && args.debug);
        assert_eq!(args.uncached_users, UncachedUsers::Ask);
        assert!(args.unknown.is_empty());
        assert_eq!(
            ModuleArgs::parse(&["uncached_users=ask", "uncached_users=ignore"]).uncached_users,
            UncachedUsers::Ignore
        );
    }

    #[test]
    fn use_first_pass_wins_in_any_order() {
        assert_eq!(
            ModuleArgs::parse(&["use_first_pass", "try_first_pass"]).pass_source,
            PassSource::UseFirst
        );
        assert_eq!(
            ModuleArgs::parse(&["try_first_pass", "use_first_pass"]).pass_source,
            PassSource::UseFirst
        );
    }

    #[test]
    fn unknown_and_malformed_arguments_are_collected() {
        let args =
            ModuleArgs::parse(&["nullok", "config=", "Debug", "config", "uncached_users=yes"]);
        assert_eq!(
            args.unknown,
            vec!["nullok", "config=", "Debug", "config", "uncached_users=yes"]
        );
        assert_eq!(args.uncached_users, UncachedUsers::Ignore);
        assert_eq!(args.config, PathBuf::from(DEFAULT_CONFIG_PATH));
        assert!(!args.debug);
    }
}
