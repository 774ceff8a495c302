//! The trust boundary: whose code Ferry may read, render and run
//! (`SECURITY.md`, "The trust boundary"). Pure decisions only.
//!
//! A repository's `.ferry.toml` is read at a commit only with a [`Cleared`]
//! for that commit, and [`clear`] is the only way to make one: every path
//! that launches (webhook events, comment commands, the reconciler's
//! repairs and retries) passes through it, so a new path cannot skip it.

use super::{Sha, Timestamp};

/// Proof that the files of one commit may be read and run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    sha: Sha,
    pub grant: Grant,
}

impl Cleared {
    /// The one commit this clearance is for.
    pub fn sha(&self) -> &Sha {
        &self.sha
    }
}

/// Why a commit is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Pushed to one of the repository's own refs: only writers can.
    Pushed,
    /// Released from the repository: only writers can.
    Released,
    /// The head of a pull request whose author, and whoever pushed the
    /// head, can push to the repository.
    TrustedAuthor,
    /// A trusted user approved exactly this head (`/ok-to-test`).
    Approved,
    /// Ferry ran units of this commit before: it was cleared then.
    RanBefore,
}

/// What Ferry knows of a pull request's head when it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadFacts {
    /// The author can push to the repository.
    pub author_trusted: bool,
    /// The head branch lives in another repository (a fork), which people
    /// who cannot push here may push to.
    pub from_fork: bool,
    /// Whether whoever pushed the head can push here; `None`: not known
    /// (the event that brought the head was not heard).
    pub pusher_trusted: Option<bool>,
    /// Someone who cannot push here pushed to the fork since the last
    /// approval: their commits are under this head too.
    pub untrusted_push: bool,
    /// A trusted user approved this very head.
    pub approved: bool,
}

/// `author_association` values GitHub gives people who may be trusted;
/// each, owners aside, is also asked whether they can push.
pub const TRUSTED_ASSOCIATIONS: [&str; 3] = ["OWNER", "MEMBER", "COLLABORATOR"];

pub fn is_trusted_association(association: &str) -> bool {
    TRUSTED_ASSOCIATIONS.contains(&association)
}

/// What asks for a commit's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Push,
    Release,
    PullRequestHead(HeadFacts),
    /// A comment command; `approves` when it is a trusted user's valid
    /// `/ok-to-test` for this head.
    Command {
        by_trusted: bool,
        approves: bool,
        head: HeadFacts,
    },
    /// A check someone asked to run again.
    Rerun {
        ran_before: bool,
    },
}

/// Why a commit's files are not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The head waits for a trusted user's `/ok-to-test`, for this reason.
    AwaitsApproval(&'static str),
    /// Nothing to ask anyone for, for this reason.
    Nothing(&'static str),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::AwaitsApproval(reason) | Refusal::Nothing(reason) => reason,
        }
    }
}

pub const OUTSIDE_AUTHOR: &str = "an outside contributor's pull request waits for a trusted user's /ok-to-test";
pub const UNTRUSTED_PUSH: &str =
    "the head was pushed to a fork by someone who cannot push here: a trusted user must comment /ok-to-test";
pub const UNTRUSTED_COMMAND: &str = "commands count only from owners, members and collaborators who can push";
pub const NEVER_RAN: &str = "Ferry never ran this commit: nothing to run again";

/// Whether `sha`'s files may be read for `subject`.
pub fn clear(sha: &Sha, subject: &Subject) -> Result<Cleared, Refusal> {
    let grant = match subject {
        Subject::Push => Grant::Pushed,
        Subject::Release => Grant::Released,
        Subject::PullRequestHead(head) => head_grant(head)?,
        Subject::Command { by_trusted: false, .. } => return Err(Refusal::Nothing(UNTRUSTED_COMMAND)),
        Subject::Command { approves: true, .. } => Grant::Approved,
        Subject::Command { head, .. } => head_grant(head)?,
        Subject::Rerun { ran_before: true } => Grant::RanBefore,
        Subject::Rerun { ran_before: false } => return Err(Refusal::Nothing(NEVER_RAN)),
    };
    Ok(Cleared { sha: sha.clone(), grant })
}

fn head_grant(head: &HeadFacts) -> Result<Grant, Refusal> {
    if head.approved {
        return Ok(Grant::Approved);
    }
    if !head.author_trusted {
        return Err(Refusal::AwaitsApproval(OUTSIDE_AUTHOR));
    }
    // A branch of the repository itself can only be pushed by its writers.
    if head.from_fork && (head.untrusted_push || head.pusher_trusted != Some(true)) {
        return Err(Refusal::AwaitsApproval(UNTRUSTED_PUSH));
    }
    Ok(Grant::TrustedAuthor)
}

/// Fewest hex digits `/ok-to-test <sha>` must give: a 7-digit prefix can
/// be found by an author who pushes commits until one matches.
pub const MIN_APPROVED_PREFIX: usize = 12;

/// Whether a trusted user's `/ok-to-test` (naming `named`, written at
/// `said_at`) approves `head`, first seen at `head_at`. A full SHA names
/// the commit alone; a shorter prefix, or none, covers only a head that
/// was there before the comment, so its author could have seen it.
pub fn approval(
    named: Option<&str>,
    head: &Sha,
    head_at: Option<Timestamp>,
    said_at: Option<Timestamp>,
) -> Result<(), String> {
    let seen = match (head_at, said_at) {
        (Some(head_at), Some(said_at)) => head_at <= said_at,
        _ => true,
    };
    match named {
        Some(named) if named.len() == 40 && named == head.as_str() => Ok(()),
        Some(named) if !head.as_str().starts_with(named) => {
            Err(format!("/ok-to-test names {named}, but the head is {}: nothing approved", head.short()))
        }
        Some(named) if named.len() < MIN_APPROVED_PREFIX => Err(format!(
            "/ok-to-test names {named}: give at least {MIN_APPROVED_PREFIX} hex digits of the head, or all 40"
        )),
        _ if !seen => Err(format!(
            "the head ({}) was pushed after the /ok-to-test comment: a trusted user must approve it again \
             (or comment `/ok-to-test {}`)",
            head.short(),
            head.as_str()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> Sha {
        Sha::parse(c.to_string().repeat(40)).unwrap()
    }

    fn head(author_trusted: bool, from_fork: bool, pusher_trusted: Option<bool>, approved: bool) -> HeadFacts {
        HeadFacts { author_trusted, from_fork, pusher_trusted, untrusted_push: false, approved }
    }

    #[test]
    fn every_pull_request_head_is_decided() {
        use Grant::*;
        let awaits = |why| Err(Refusal::AwaitsApproval(why));
        // Every combination of the five facts.
        for author in [false, true] {
            for fork in [false, true] {
                for pusher in [None, Some(false), Some(true)] {
                    for tainted in [false, true] {
                        for approved in [false, true] {
                            let facts = HeadFacts { untrusted_push: tainted, ..head(author, fork, pusher, approved) };
                            let expected = if approved {
                                Ok(Approved)
                            } else if !author {
                                awaits(OUTSIDE_AUTHOR)
                            } else if fork && (tainted || pusher != Some(true)) {
                                awaits(UNTRUSTED_PUSH)
                            } else {
                                Ok(TrustedAuthor)
                            };
                            let got = clear(&sha('a'), &Subject::PullRequestHead(facts)).map(|c| c.grant);
                            assert_eq!(got, expected, "{facts:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn commands_clear_only_for_trusted_users_and_approvals_only_their_head() {
        let untrusted = head(false, true, Some(false), false);
        let cases = [
            (
                "an outsider's command",
                Subject::Command { by_trusted: false, approves: true, head: head(true, false, None, true) },
                Err(Refusal::Nothing(UNTRUSTED_COMMAND)),
            ),
            (
                "a valid approval",
                Subject::Command { by_trusted: true, approves: true, head: untrusted },
                Ok(Grant::Approved),
            ),
            (
                "a /retest on an unapproved head",
                Subject::Command { by_trusted: true, approves: false, head: untrusted },
                Err(Refusal::AwaitsApproval(OUTSIDE_AUTHOR)),
            ),
            (
                "a /retest on a trusted head",
                Subject::Command { by_trusted: true, approves: false, head: head(true, false, None, false) },
                Ok(Grant::TrustedAuthor),
            ),
            ("a push", Subject::Push, Ok(Grant::Pushed)),
            ("a release", Subject::Release, Ok(Grant::Released)),
            ("a rerun of a commit that ran", Subject::Rerun { ran_before: true }, Ok(Grant::RanBefore)),
            (
                "a rerun of a commit that never ran",
                Subject::Rerun { ran_before: false },
                Err(Refusal::Nothing(NEVER_RAN)),
            ),
        ];
        for (name, subject, expected) in cases {
            let got = clear(&sha('b'), &subject);
            assert_eq!(got.as_ref().map(|c| &c.grant), expected.as_ref(), "{name}");
            if let Ok(cleared) = got {
                assert_eq!(cleared.sha(), &sha('b'), "{name}: for that commit alone");
            }
        }
    }

    #[test]
    fn trust_starts_from_github_associations() {
        for (association, trusted) in [
            ("OWNER", true),
            ("MEMBER", true),
            ("COLLABORATOR", true),
            ("CONTRIBUTOR", false),
            ("FIRST_TIME_CONTRIBUTOR", false),
            ("NONE", false),
            ("", false),
        ] {
            assert_eq!(is_trusted_association(association), trusted, "{association}");
        }
    }

    #[test]
    fn an_approval_binds_to_what_its_author_could_have_seen() {
        let head = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        let (before, after) = (Some(Timestamp::from_unix(100)), Some(Timestamp::from_unix(200)));
        let ok = |named: Option<&str>, head_at, said_at| approval(named, &head, head_at, said_at).is_ok();
        // No SHA: only a head pushed before the comment.
        assert!(ok(None, before, after));
        assert!(ok(None, after, after));
        assert!(!ok(None, after, before));
        assert!(ok(None, None, after), "no time known: as before");
        // The full SHA approves that commit, whenever it was pushed.
        assert!(ok(Some(head.as_str()), after, before));
        // A prefix of 12 or more: the time check still applies.
        assert!(ok(Some("0123456789ab"), before, after));
        assert!(!ok(Some("0123456789ab"), after, before));
        // A short prefix approves nothing, even when it matches.
        let short = approval(Some("0123456"), &head, before, after).unwrap_err();
        assert!(short.contains("at least 12"), "{short}");
        assert!(!ok(Some("01234567890"), before, after));
        // Another commit approves nothing.
        let other = approval(Some("fedcba987654"), &head, before, after).unwrap_err();
        assert!(other.contains("nothing approved"), "{other}");
    }
}
