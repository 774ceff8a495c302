//! Which use case an event goes to, or why it goes nowhere: a pure decision
//! on the parsed event.

use super::event::{Command, Detail, GitEvent};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Pong,
    Installation(InstallationChange),
    Repositories,
    Launch(Trigger),
    /// Nothing to do; the reason is what the delivery log shows.
    Ignore(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationChange {
    Created,
    Deleted,
    Suspended,
    Unsuspended,
    PermissionsAccepted,
}

/// What may launch units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Push,
    PullRequest,
    Release,
    Command(Command),
    Rerequested,
}

const PULL_REQUEST_ACTIONS: [&str; 6] = ["opened", "reopened", "synchronize", "closed", "labeled", "ready_for_review"];
const RELEASE_ACTIONS: [&str; 5] = ["published", "prereleased", "released", "edited", "deleted"];

pub fn route(event: &GitEvent) -> Route {
    let action = event.action.as_deref().unwrap_or("");
    let not_handled = || Route::Ignore(format!("{} action `{action}` is not one Ferry acts on", event.name));
    match &event.detail {
        Detail::Ping => Route::Pong,
        Detail::Installation(_) => match action {
            "created" => Route::Installation(InstallationChange::Created),
            "deleted" => Route::Installation(InstallationChange::Deleted),
            "suspend" => Route::Installation(InstallationChange::Suspended),
            "unsuspend" => Route::Installation(InstallationChange::Unsuspended),
            "new_permissions_accepted" => Route::Installation(InstallationChange::PermissionsAccepted),
            _ => not_handled(),
        },
        Detail::InstallationRepositories(_) => match action {
            "added" | "removed" => Route::Repositories,
            _ => not_handled(),
        },
        Detail::Push(push) if push.deleted => Route::Ignore(format!("{} was deleted: nothing to build", push.git_ref)),
        Detail::Push(_) => Route::Launch(Trigger::Push),
        Detail::PullRequest(_) if PULL_REQUEST_ACTIONS.contains(&action) => Route::Launch(Trigger::PullRequest),
        Detail::Release(_) if RELEASE_ACTIONS.contains(&action) => Route::Launch(Trigger::Release),
        Detail::PullRequest(_) | Detail::Release(_) => not_handled(),
        Detail::Comment(comment) => match (action, comment.on_pull_request, comment.command) {
            ("created", true, Some(command)) => Route::Launch(Trigger::Command(command)),
            ("created", false, Some(_)) => Route::Ignore("commands work on pull requests only".into()),
            ("created", _, None) => Route::Ignore("the comment gives no command".into()),
            _ => not_handled(),
        },
        Detail::Rerequested { .. } if action == "rerequested" => Route::Launch(Trigger::Rerequested),
        Detail::Rerequested { .. } => not_handled(),
        Detail::Other => Route::Ignore(format!("Ferry does not act on {} events", event.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::*;
    use crate::domain::{PrNumber, RefName, Sha, Tag};

    fn sha() -> Sha {
        Sha::parse("c".repeat(40)).unwrap()
    }

    fn event(name: &str, action: Option<&str>, detail: Detail) -> GitEvent {
        GitEvent { action: action.map(Into::into), ..GitEvent::new(name, None, detail) }
    }

    fn installation() -> Detail {
        Detail::Installation(InstallationDetail {
            account: "acme".into(),
            repository_selection: "all".into(),
            suspended: false,
            repositories: vec![],
        })
    }

    fn repositories() -> Detail {
        Detail::InstallationRepositories(RepositoriesDetail {
            account: "acme".into(),
            repository_selection: "selected".into(),
            added: vec![],
            removed: vec![],
        })
    }

    fn push(deleted: bool) -> Detail {
        Detail::Push(Push { deleted, ..Push::to(RefName::parse("refs/heads/main").unwrap(), sha(), sha()) })
    }

    fn pull_request() -> Detail {
        Detail::PullRequest(PullRequestDetail {
            number: PrNumber::new(1),
            head_sha: sha(),
            head_ref: "fix".into(),
            base_ref: "main".into(),
            author: "a".into(),
            author_association: "MEMBER".into(),
            draft: false,
            merged: false,
            from_fork: false,
            labels: vec![],
        })
    }

    fn release() -> Detail {
        Detail::Release(ReleaseDetail {
            tag: Tag::parse("v1").unwrap(),
            prerelease: false,
            draft: false,
            target_commitish: "main".into(),
        })
    }

    fn comment(on_pull_request: bool, command: Option<Command>) -> Detail {
        Detail::Comment(CommentDetail {
            id: 1,
            number: PrNumber::new(1),
            on_pull_request,
            author: "m".into(),
            author_association: "MEMBER".into(),
            command,
            command_arg: None,
        })
    }

    fn ignored(route: Route) -> bool {
        matches!(route, Route::Ignore(reason) if !reason.is_empty())
    }

    #[test]
    fn installation_actions() {
        use InstallationChange::*;
        for (action, change) in [
            ("created", Created),
            ("deleted", Deleted),
            ("suspend", Suspended),
            ("unsuspend", Unsuspended),
            ("new_permissions_accepted", PermissionsAccepted),
        ] {
            assert_eq!(route(&event("installation", Some(action), installation())), Route::Installation(change));
        }
        assert!(ignored(route(&event("installation", Some("renamed"), installation()))));
        for action in ["added", "removed"] {
            assert_eq!(route(&event("installation_repositories", Some(action), repositories())), Route::Repositories);
        }
        assert!(ignored(route(&event("installation_repositories", Some("x"), repositories()))));
    }

    #[test]
    fn pushes_launch_unless_the_ref_was_deleted() {
        assert_eq!(route(&event("push", None, push(false))), Route::Launch(Trigger::Push));
        assert!(ignored(route(&event("push", None, push(true)))));
    }

    #[test]
    fn pull_request_actions() {
        for action in PULL_REQUEST_ACTIONS {
            assert_eq!(
                route(&event("pull_request", Some(action), pull_request())),
                Route::Launch(Trigger::PullRequest)
            );
        }
        for action in ["assigned", "edited", "unlabeled", "review_requested", "converted_to_draft"] {
            assert!(ignored(route(&event("pull_request", Some(action), pull_request()))), "{action}");
        }
    }

    #[test]
    fn release_actions() {
        for action in RELEASE_ACTIONS {
            assert_eq!(route(&event("release", Some(action), release())), Route::Launch(Trigger::Release));
        }
        for action in ["created", "unpublished"] {
            assert!(ignored(route(&event("release", Some(action), release()))), "{action}");
        }
    }

    #[test]
    fn comments_launch_only_commands_on_pull_requests() {
        for command in [Command::Retest, Command::OkToTest] {
            let routed = route(&event("issue_comment", Some("created"), comment(true, Some(command))));
            assert_eq!(routed, Route::Launch(Trigger::Command(command)));
        }
        assert!(ignored(route(&event("issue_comment", Some("created"), comment(false, Some(Command::Retest))))));
        assert!(ignored(route(&event("issue_comment", Some("created"), comment(true, None)))));
        assert!(ignored(route(&event("issue_comment", Some("edited"), comment(true, Some(Command::Retest))))));
        assert!(ignored(route(&event("issue_comment", Some("deleted"), comment(true, None)))));
    }

    #[test]
    fn checks_launch_when_rerequested() {
        for name in ["check_suite", "check_run"] {
            let rerequested = event(name, Some("rerequested"), Detail::Rerequested { head_sha: sha(), check_id: 1 });
            assert_eq!(route(&rerequested), Route::Launch(Trigger::Rerequested));
            let completed = event(name, Some("completed"), Detail::Rerequested { head_sha: sha(), check_id: 1 });
            assert!(ignored(route(&completed)));
        }
    }

    #[test]
    fn ping_pongs_and_the_rest_is_ignored() {
        assert_eq!(route(&event("ping", None, Detail::Ping)), Route::Pong);
        assert!(ignored(route(&event("star", Some("created"), Detail::Other))));
    }
}
