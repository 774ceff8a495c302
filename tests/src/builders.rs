//! Record builders: a valid record of each kind in one call, varied by name.

use ferry::domain::{
    Delivery, DeliveryId, Installation, InstallationId, PrNumber, PrState, PullRequest, RefName, Release, RepoName,
    Sha, Tag, Timestamp,
};
use ferry::domain::{PolledRef, RepoMode, Repository, Run, RunStatus, UnitName};

pub fn repo(full_name: &str) -> RepoName {
    RepoName::parse(full_name).expect("a valid repository name")
}

/// A SHA made of one repeated hex digit.
pub fn sha(digit: char) -> Sha {
    Sha::parse(digit.to_string().repeat(40)).expect("a valid sha")
}

pub fn installation(id: u64) -> Installation {
    Installation::new(InstallationId::new(id), format!("account-{id}"), "selected")
}

/// A run of `unit` at the commit of `sha` repeated, named `<unit>-<sha>`.
pub fn run(full_name: &str, unit: &str, sha: char, status: RunStatus) -> Run {
    Run {
        repo: repo(full_name),
        unit: UnitName::parse(unit).expect("a valid unit name"),
        sha: self::sha(sha),
        namespace: "ci".into(),
        name: format!("{unit}-{sha}"),
        status,
        reported: None,
        run_kind: None,
        queued_at: None,
        unit_limit: None,
        keep_runs: None,
        launched_at: None,
        pr: None,
        retain_until: None,
    }
}

pub fn repository(full_name: &str) -> Repository {
    Repository {
        name: repo(full_name),
        mode: RepoMode::App,
        installation: Some(InstallationId::new(1)),
        hook_id: None,
        last_event_at: None,
        last_error: None,
        tracked_since: None,
    }
}

pub fn pull_request(full_name: &str, number: u64) -> PullRequest {
    PullRequest {
        repo: repo(full_name),
        number: PrNumber::new(number),
        head_sha: sha('a'),
        state: PrState::Open,
        approved_sha: None,
        approved_by: None,
        preview_namespace: None,
        head_ref: None,
        draft: false,
        labels: vec![],
        author_association: None,
        author: None,
        updated_at: None,
        head_at: None,
        unseen_listings: 0,
        from_fork: false,
        head_pushed_by: None,
        untrusted_push: false,
        retain_until: None,
    }
}

pub fn release(full_name: &str, tag: &str) -> Release {
    Release {
        repo: repo(full_name),
        tag: Tag::parse(tag).expect("a valid tag"),
        prerelease: false,
        recorded_at: Timestamp::now(),
    }
}

pub fn polled_ref(full_name: &str, name: &str) -> PolledRef {
    PolledRef {
        repo: repo(full_name),
        name: RefName::parse(name).expect("a valid ref"),
        sha: None,
        etag: None,
        token_epoch: 0,
        next_poll_at: Timestamp::now(),
        endpoint: None,
        last_error: None,
    }
}

pub fn delivery(id: &str, received_at: Timestamp) -> Delivery {
    Delivery {
        attempts: 0,
        ..Delivery::received(DeliveryId::parse(id).expect("a valid delivery id"), "push", received_at)
    }
}

/// A `[[poll]]` entry for ref `main` at `url`, read as `kind`, every
/// minute, CloudEvents to no endpoint, with no token or CA of its own.
pub fn tracked_ref(url: &str, kind: ferry::poll::SourceKind) -> ferry::poll::TrackedRef {
    ferry::poll::TrackedRef {
        url: url.to_owned(),
        reference: "main".into(),
        kind,
        frequency: "1m".into(),
        endpoint: None,
        secret: None,
        secret_name: None,
        launch: false,
        format: ferry::poll::Format::Cloudevents,
        api_url: None,
        ca_file: None,
        token_secret: None,
        provider: None,
        clone_secret: None,
    }
}
