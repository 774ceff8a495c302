//! The GitHub events Ferry handles, one row each, and how each reaches
//! it: the parser, the App manifest and the repository webhook Ferry
//! creates all read this table. A test checks every name against the
//! events GitHub documents (`@octokit/webhooks-examples`).

/// How an event reaches Ferry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaches {
    /// Every App gets it, subscribed or not (`ping`, installation events).
    EveryApp,
    /// The App subscribes to it.
    Subscribed,
    /// The App subscribes to it, and a repository webhook Ferry creates
    /// (repository-token mode) asks for it too.
    SubscribedAndHook,
}

/// Every event Ferry reads in full; any other is only checked to be JSON.
pub const HANDLED: [(&str, Reaches); 9] = [
    ("ping", Reaches::EveryApp),
    ("installation", Reaches::EveryApp),
    ("installation_repositories", Reaches::EveryApp),
    ("push", Reaches::SubscribedAndHook),
    ("pull_request", Reaches::SubscribedAndHook),
    ("release", Reaches::SubscribedAndHook),
    ("issue_comment", Reaches::SubscribedAndHook),
    ("check_suite", Reaches::Subscribed),
    ("check_run", Reaches::Subscribed),
];

/// Whether Ferry reads event `name` in full.
pub fn handles(name: &str) -> bool {
    HANDLED.iter().any(|(handled, _)| *handled == name)
}

/// The events the App manifest subscribes to.
pub fn subscribed() -> Vec<&'static str> {
    HANDLED.iter().filter(|(_, how)| *how != Reaches::EveryApp).map(|(name, _)| *name).collect()
}

/// The events a repository webhook Ferry creates delivers.
pub fn hook_events() -> Vec<&'static str> {
    HANDLED.iter().filter(|(_, how)| *how == Reaches::SubscribedAndHook).map(|(name, _)| *name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_follow_from_the_table() {
        assert_eq!(subscribed(), ["push", "pull_request", "release", "issue_comment", "check_suite", "check_run"]);
        assert_eq!(hook_events(), ["push", "pull_request", "release", "issue_comment"]);
        assert!(handles("ping") && handles("check_run") && !handles("star"));
    }
}
