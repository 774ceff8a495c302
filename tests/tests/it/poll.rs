//! The poller against fakes of GitHub, GitLab and a Git server with real
//! ETag semantics, delivering CloudEvents to a receiver.

use std::sync::Arc;
use std::time::Duration;

use ferry::cluster::DryRunCluster;
use ferry::domain::{PolledRef, RefName, Timestamp};
use ferry::forge::DryRunForge;
use ferry::forge::github::NoApp;
use ferry::poll::source::Sources;
use ferry::poll::{Format, SourceKind, TrackedRef, deliver, event_id};
use ferry::secrets::SecretStore;
use ferry::store::{Key, StateStore};
use ferry::units::OperatorConfig;
use ferry::usecase::launch::LaunchPorts;
use ferry::usecase::poll::{PollPorts, PollReport, poll};
use ferry::usecase::tokens::Tokens;
use ferry_tests::builders::repo;
use ferry_tests::git_hosts::{GitHosts, Receiver};
use ferry_tests::github::SimClock;
use secrecy::SecretString;

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

struct Poller {
    dir: tempfile::TempDir,
    state: Arc<dyn StateStore>,
    secrets: Arc<dyn SecretStore>,
    tokens: Tokens,
    sources: Sources,
    http: ferry::net::SharedClient,
    cluster: DryRunCluster,
    forge: DryRunForge,
    operator: OperatorConfig,
    clock: Arc<SimClock>,
}

impl Poller {
    fn new(hosts: &GitHosts, operator: OperatorConfig) -> Self {
        ferry::telemetry::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let state: Arc<dyn StateStore> = Arc::new(ferry_tests::embedded::state_in(dir.path()));
        let secrets: Arc<dyn SecretStore> = Arc::new(ferry_tests::embedded::secrets_in(dir.path()));
        let clock = SimClock::at(Timestamp::now());
        Self {
            tokens: Tokens::new(secrets.clone(), Arc::new(NoApp), clock.clone()),
            sources: Sources::new(&url::Url::parse(&hosts.url()).unwrap()),
            http: ferry::net::SharedClient::default(),
            cluster: DryRunCluster::new(dir.path()),
            forge: DryRunForge::new(dir.path()),
            operator,
            state,
            secrets,
            clock,
            dir,
        }
    }

    async fn cycle(&self, refs: &[TrackedRef], deadline: Option<tokio::time::Instant>) -> PollReport {
        poll(self.ports(), refs, 10, deadline).await.unwrap()
    }

    fn ports(&self) -> PollPorts<'_> {
        PollPorts {
            secrets: self.secrets.as_ref(),
            sources: &self.sources,
            http: &self.http,
            launch: LaunchPorts {
                state: self.state.as_ref(),
                tokens: &self.tokens,
                forge: &self.forge,
                cluster: &self.cluster,
                operator: &self.operator,
                cluster_name: None,
                clock: self.clock.as_ref(),
            },
        }
    }

    async fn stored(&self, tracked: &TrackedRef) -> Option<PolledRef> {
        let key = Key::Ref(
            tracked.repo(self.sources.github_api()).unwrap(),
            RefName::parse(tracked.reference.clone()).unwrap(),
        );
        self.state.load::<PolledRef>(&key).await.unwrap().map(|f| f.record)
    }

    /// A minute and a bit on: every once-a-minute ref is due again.
    fn next_minute(&self) {
        self.clock.advance(Duration::from_secs(67));
    }
}

fn github(hosts: &GitHosts, path: &str, endpoint: Option<String>) -> TrackedRef {
    TrackedRef {
        endpoint,
        api_url: Some(hosts.url()),
        ..ferry_tests::builders::tracked_ref(&format!("https://github.com/{path}"), SourceKind::Github)
    }
}

#[tokio::test]
async fn a_new_commit_sends_one_cloudevent_and_an_unchanged_ref_is_a_free_304() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    let mut tracked = github(&hosts, "acme/api", Some(receiver.url()));
    tracked.secret = Some("hook-key".into());
    let poller = Poller::new(&hosts, OperatorConfig::default());

    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!((report.polled, report.delivered), (1, 1), "{report:?}");
    let events = receiver.accepted();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.headers["ce-specversion"], "1.0");
    assert_eq!(event.headers["ce-type"], "commit");
    assert_eq!(event.headers["ce-source"], "https://github.com/acme/api");
    assert_eq!(event.headers["ce-subject"], "refs/heads/main");
    assert_eq!(event.headers["ce-id"], event_id("https://github.com/acme/api", "refs/heads/main", SHA_A));
    assert_eq!(event.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
    assert_eq!(body["sha"], SHA_A, "the body is the API's answer");
    let expected = deliver::signature(&SecretString::from("hook-key".to_owned()), &event.body);
    assert_eq!(event.headers[deliver::SIGNATURE_HEADER], expected);
    assert_eq!(poller.stored(&tracked).await.unwrap().sha.unwrap().as_str(), SHA_A);

    // Not due yet: nothing asked.
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!((report.polled, report.not_due), (0, 1));
    // Due, unchanged: a 304, no event.
    poller.next_minute();
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!((report.polled, report.unchanged, report.delivered), (1, 1, 0));
    assert_eq!(hosts.counts(), (2, 1), "the second request was a 304");
    assert_eq!(receiver.accepted().len(), 1);

    // A new commit: one more event.
    hosts.set("acme/api", "main", SHA_B);
    poller.next_minute();
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 1);
    assert_eq!(receiver.accepted().len(), 2);
}

#[tokio::test]
async fn a_failed_delivery_is_sent_again_next_cycle_and_only_then_recorded() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    let tracked = github(&hosts, "acme/api", Some(receiver.url()));
    let poller = Poller::new(&hosts, OperatorConfig::default());
    receiver.fail_next(deliver::ATTEMPTS as usize);

    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!((report.delivered, report.undelivered), (0, 1), "{report:?}");
    assert_eq!(receiver.attempts(), 3, "retried with backoff within the cycle");
    let stored = poller.stored(&tracked).await.unwrap();
    assert_eq!(stored.sha, None, "not recorded before it is delivered");
    assert!(stored.last_error.unwrap().contains("503"));

    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 1, "due again at once, and sent: {report:?}");
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(poller.stored(&tracked).await.unwrap().sha.unwrap().as_str(), SHA_A);
}

#[tokio::test]
async fn a_changed_etag_with_the_same_sha_sends_nothing() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    let tracked = github(&hosts, "acme/api", Some(receiver.url()));
    let poller = Poller::new(&hosts, OperatorConfig::default());
    poller.cycle(std::slice::from_ref(&tracked), None).await;
    hosts.touch_etags();
    poller.next_minute();
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!((report.unchanged, report.delivered), (1, 0), "{report:?}");
    assert_eq!(receiver.accepted().len(), 1);
}

#[tokio::test]
async fn a_rate_limit_stops_the_cycle_and_loses_nothing() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let refs: Vec<TrackedRef> = (0..5)
        .map(|i| {
            hosts.set(&format!("acme/r{i}"), "main", SHA_A);
            github(&hosts, &format!("acme/r{i}"), Some(receiver.url()))
        })
        .collect();
    let poller = Poller::new(&hosts, OperatorConfig::default());
    hosts.rate_limit_next();
    let report = poller.cycle(&refs, None).await;
    assert!(report.stopped.as_deref().unwrap_or_default().contains("rate limiting; retry after 60s"), "{report:?}");
    let delivered_first = report.delivered;
    assert!(delivered_first < 5);
    let report = poller.cycle(&refs, None).await;
    assert_eq!(report.not_due, 1 + delivered_first, "the limited ref waits for the reset: {report:?}");
    poller.next_minute();
    let report = poller.cycle(&refs, None).await;
    assert_eq!(report.delivered + delivered_first, 5, "the rest were still due: {report:?}");
    assert_eq!(receiver.accepted().len(), 5);
}

#[tokio::test]
async fn near_the_deadline_nothing_starts_and_everything_stays_due() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    let tracked = github(&hosts, "acme/api", Some(receiver.url()));
    let poller = Poller::new(&hosts, OperatorConfig::default());
    let soon = tokio::time::Instant::now() + Duration::from_secs(1);
    let report = poller.cycle(std::slice::from_ref(&tracked), Some(soon)).await;
    assert_eq!((report.polled, report.stopped.as_deref()), (0, Some("the deadline is near")));
    assert_eq!(hosts.counts().0, 0);
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 1);
}

#[tokio::test]
async fn a_missing_ref_fails_alone() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    hosts.missing("acme/gone", "main");
    let refs = [github(&hosts, "acme/gone", Some(receiver.url())), github(&hosts, "acme/api", Some(receiver.url()))];
    let poller = Poller::new(&hosts, OperatorConfig::default());
    let report = poller.cycle(&refs, None).await;
    assert_eq!(report.delivered, 1);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].problem, "404 Not Found");
    assert_eq!(poller.stored(&refs[0]).await.unwrap().last_error.as_deref(), Some("404 Not Found"));
}

#[tokio::test]
async fn gitlab_and_plain_git_servers_are_polled_too() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("group/sub/project", "main", SHA_A);
    hosts.set("acme/tools", "main", SHA_B);
    let gitlab = TrackedRef {
        url: "https://gitlab.example.com/group/sub/project".into(),
        kind: SourceKind::Gitlab,
        api_url: Some(format!("{}/api/v4", hosts.url())),
        ..github(&hosts, "x/y", Some(receiver.url()))
    };
    let git = TrackedRef {
        url: format!("{}/git/acme/tools", hosts.url()),
        kind: SourceKind::Git,
        api_url: None,
        format: Format::Cdevents,
        ..github(&hosts, "x/y", Some(receiver.url()))
    };
    let poller = Poller::new(&hosts, OperatorConfig::default());
    let report = poller.cycle(&[gitlab.clone(), git.clone()], None).await;
    assert_eq!(report.delivered, 2, "{report:?}");
    let events = receiver.accepted();
    let gitlab_event =
        events.iter().find(|e| e.headers.get("ce-source").is_some_and(|s| s.contains("gitlab"))).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&gitlab_event.body).unwrap()["id"], SHA_A);
    let cdevent = events.iter().find(|e| e.headers["ce-type"] == deliver::CDEVENT_TYPE).unwrap();
    let cdevent: serde_json::Value = serde_json::from_slice(&cdevent.body).unwrap();
    assert_eq!(cdevent["context"]["type"], deliver::CDEVENT_TYPE);
    assert_eq!(cdevent["subject"]["id"], SHA_B);
    poller.next_minute();
    let report = poller.cycle(&[gitlab, git], None).await;
    assert_eq!((report.unchanged, report.delivered), (2, 0));
}

#[tokio::test]
async fn a_cdevent_goes_out_as_a_binary_mode_cloudevent() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    hosts.set("acme/api", "main", SHA_A);
    let tracked = TrackedRef { format: Format::Cdevents, ..github(&hosts, "acme/api", Some(receiver.url())) };
    let poller = Poller::new(&hosts, OperatorConfig::default());
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 1, "{report:?}");

    let events = receiver.accepted();
    let [event] = &events[..] else { panic!("one event, got {}", events.len()) };
    let id = event_id("https://github.com/acme/api", "refs/heads/main", SHA_A);
    assert_eq!(event.headers["ce-specversion"], "1.0");
    assert_eq!(event.headers["ce-type"], "dev.cdevents.change.merged.0.2.0");
    assert_eq!(event.headers["ce-source"], "https://github.com/acme/api");
    assert_eq!(event.headers["ce-subject"], SHA_A);
    assert_eq!(event.headers["ce-id"], id);
    assert_eq!(event.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&event.body).unwrap();
    let timestamp = body["context"]["timestamp"].as_str().unwrap();
    let instant = |text: &str| Timestamp::parse_rfc3339(text).unwrap();
    assert_eq!(instant(&event.headers["ce-time"]), instant(timestamp), "ce-time is the CDEvent's timestamp");
    assert_eq!(
        body,
        serde_json::json!({
            "context": {
                "version": "0.4.1",
                "id": id,
                "source": "https://github.com/acme/api",
                "type": "dev.cdevents.change.merged.0.2.0",
                "timestamp": timestamp,
            },
            "subject": {
                "id": SHA_A,
                "source": "https://github.com/acme/api",
                "type": "change",
                "content": { "repository": { "id": "acme/api", "source": "https://github.com" } },
            },
            "customData": { "ref": "refs/heads/main", "sha": SHA_A },
            "customDataContentType": "application/json",
        })
    );
}

#[tokio::test]
async fn launching_a_polled_commit_names_the_run_a_webhook_push_would() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    hosts.set("acme/api", "main", SHA_A);
    let operator = OperatorConfig::parse(
        "[repositories.\"acme/api\"]\nunits = '''\n[api.pipeline]\nnamespace = \"ci\"\nref = \"build\"\n'''\n",
    )
    .unwrap();
    let poller = Poller::new(&hosts, operator);
    // The repository is tracked with a token of its own (no App here).
    let mut tracked_repo = ferry_tests::builders::repository("acme/api");
    tracked_repo.mode = ferry::domain::RepoMode::Token;
    tracked_repo.installation = None;
    poller.state.create(&tracked_repo.into()).await.unwrap();
    let name = ferry::secrets::SecretName::repository(&repo("acme/api")).unwrap();
    poller.secrets.put(&name, &SecretString::from("ghp_tokenforacmeapi0000".to_owned())).await.unwrap();
    let mut tracked = github(&hosts, "acme/api", None);
    tracked.url = format!("{}/acme/api", hosts.url());
    tracked.launch = true;
    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(hosts.credentials_seen().await, ["Bearer ghp_tokenforacmeapi0000"], "read with its token");
    let runs = poller.dir.path().join("cluster/ci/pipelinerun");
    let names: Vec<String> =
        std::fs::read_dir(&runs).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let webhook_name = ferry::cluster::manifests::run_name(
        &repo("acme/api"),
        &ferry::domain::UnitName::parse("api").unwrap(),
        &ferry::domain::Sha::parse(SHA_A).unwrap(),
        "refs/heads/main",
        ferry::cluster::manifests::Cause::Push,
    );
    assert_eq!(names, [format!("{webhook_name}.yaml")]);
}

/// The repository `acme/api` tracked on the configured GitHub with a token of its own.
async fn tracked_on_github(poller: &Poller) {
    let mut tracked_repo = ferry_tests::builders::repository("acme/api");
    tracked_repo.mode = ferry::domain::RepoMode::Token;
    tracked_repo.installation = None;
    poller.state.create(&tracked_repo.into()).await.unwrap();
    let name = ferry::secrets::SecretName::repository(&repo("acme/api")).unwrap();
    poller.secrets.put(&name, &SecretString::from("ghp_tokenforacmeapi0000".to_owned())).await.unwrap();
}

#[tokio::test]
async fn an_acme_api_on_another_host_never_gets_the_github_token() {
    let github_hosts = GitHosts::start(Duration::ZERO).await;
    let elsewhere = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    elsewhere.set("acme/api", "main", SHA_A);
    elsewhere.set("acme/api", "dev", SHA_B);
    let poller = Poller::new(&github_hosts, OperatorConfig::default());
    tracked_on_github(&poller).await;
    // Same owner/name, read through another host's API: as `type = "github"`
    // (a GitHub Enterprise elsewhere, say) and as plain Git.
    let mut as_github = github(&elsewhere, "acme/api", Some(receiver.url()));
    as_github.url = format!("{}/acme/api", elsewhere.url());
    let mut as_git = as_github.clone();
    as_git.kind = SourceKind::Git;
    as_git.url = format!("{}/git/acme/api", elsewhere.url());
    as_git.reference = "dev".into();

    let report = poller.cycle(&[as_github, as_git], None).await;
    assert_eq!((report.delivered, report.failed.len()), (2, 0), "{report:?}");
    assert_eq!(elsewhere.received().await, 2);
    assert_eq!(elsewhere.credentials_seen().await, Vec::<String>::new(), "read without a credential");
    assert_eq!(github_hosts.received().await, 0);
}

#[tokio::test]
async fn launching_a_same_named_repository_of_another_host_is_refused() {
    let github_hosts = GitHosts::start(Duration::ZERO).await;
    let elsewhere = GitHosts::start(Duration::ZERO).await;
    elsewhere.set("acme/api", "main", SHA_A);
    let operator = OperatorConfig::parse(
        "[repositories.\"acme/api\"]\nunits = '''\n[api.pipeline]\nnamespace = \"ci\"\nref = \"build\"\n'''\n",
    )
    .unwrap();
    let poller = Poller::new(&github_hosts, operator);
    tracked_on_github(&poller).await;
    let tracked = TrackedRef {
        url: format!("{}/git/acme/api", elsewhere.url()),
        kind: SourceKind::Git,
        launch: true,
        ..github(&elsewhere, "acme/api", None)
    };

    let report = poller.cycle(std::slice::from_ref(&tracked), None).await;
    assert_eq!(report.delivered, 0, "{report:?}");
    assert!(report.failed[0].problem.contains("launch = true needs a repository on"), "{report:?}");
    assert_eq!((elsewhere.received().await, github_hosts.received().await), (0, 0));
    assert!(!poller.dir.path().join("cluster").exists(), "no run, and no git Secret with a GitHub token");
}

/// A host that answers without end (here 17 MiB) is cut off at 16 MiB: the
/// poll fails, saying so, and the answer never grows the poller's memory
/// further.
#[tokio::test]
async fn a_host_answering_more_than_the_limit_fails_the_poll_unread() {
    let host = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(vec![b'0'; 17 * 1024 * 1024]))
        .mount(&host)
        .await;
    ferry::telemetry::install_crypto_provider();
    let sources = Sources::new(&url::Url::parse("https://api.github.com").unwrap());
    let tracked = ferry_tests::builders::tracked_ref(&format!("{}/acme/api.git", host.uri()), SourceKind::Git);
    let polled = sources.fetch(&tracked, None, None).await;
    let ferry::poll::source::Polled::Failed(problem) = polled else { panic!("{polled:?}") };
    assert!(problem.contains("larger than 16777216 bytes"), "{problem}");
}

/// Fanned out over the emulator's SQS: more refs due than the poller polls
/// at once are queued, one item each, and the workers poll each once; an
/// item naming a ref the operator does not list asks no host, and one
/// polled since it was queued is not due.
#[tokio::test]
async fn fanned_out_many_due_refs_are_queued_and_each_polled_once() {
    use ferry::queue::{SqsQueue, WorkQueue};
    use ferry::usecase::fanout::poll as fanned;

    use super::fanout::drain;

    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let refs = five_refs(&hosts, &receiver);
    let poller =
        Poller::new(&hosts, OperatorConfig { poll: refs.clone(), poll_in_flight: 2, ..OperatorConfig::default() });
    let (sqs, url, _) = ferry_tests::emulator::work_queue(2, 3).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());

    let planned = fanned::plan(poller.ports(), &queue, None).await.unwrap();
    assert_eq!((planned.queued, planned.polled), (5, 0), "{planned:?}");
    assert_eq!(hosts.counts().0, 0, "the planner asks no host");
    let stranger = r#"{"url":"https://evil.example/acme/r0","ref":"main"}"#.to_owned();
    queue.send(&[(stranger, Duration::ZERO)]).await.unwrap();
    let work = |messages| fanned::work(poller.ports(), &queue, messages, None);
    let mut report = PollReport::default();
    for worked in drain(&sqs, &url, work).await {
        assert_eq!(worked.failed, Vec::<String>::new());
        report.add(worked.report);
    }
    assert_eq!((report.polled, report.delivered, report.left), (5, 5, 0), "{report:?}");
    assert_eq!((hosts.counts().0, receiver.accepted().len()), (5, 5), "one request and one event per ref");

    let again = serde_json::to_string(&fanned::Item { url: refs[0].url.clone(), reference: "main".into() }).unwrap();
    queue.send(&[(again, Duration::ZERO)]).await.unwrap();
    let late = drain(&sqs, &url, work).await;
    assert_eq!(late.iter().map(|w| w.report.not_due).sum::<usize>(), 1, "polled since it was queued");
    assert_eq!(hosts.counts().0, 5);
}

/// The planner polls the due refs itself when one round at once covers them.
#[tokio::test]
async fn fanned_out_few_due_refs_are_polled_by_the_planner_itself() {
    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let refs = five_refs(&hosts, &receiver);
    let poller = Poller::new(&hosts, OperatorConfig { poll: refs, poll_in_flight: 5, ..OperatorConfig::default() });
    let (sqs, url, _) = ferry_tests::emulator::work_queue(2, 3).await;
    let queue = ferry::queue::SqsQueue::new(sqs.clone(), url.clone());
    let planned = ferry::usecase::fanout::poll::plan(poller.ports(), &queue, None).await.unwrap();
    assert_eq!((planned.queued, planned.delivered), (0, 5), "{planned:?}");
    let attribute = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    assert_eq!(super::fanout::count(&sqs, &url, attribute).await, 0);
}

/// A host's rate limit holds back the batch's other items of that host,
/// which stay due for the next plan, and fails none; the ref that met it
/// waits in its record until the host's `Retry-After` is over. Nothing goes
/// back on the queue: the plans made meanwhile would queue it twice.
#[tokio::test]
async fn fanned_out_a_rate_limited_host_s_items_go_back_on_the_queue() {
    use ferry::usecase::fanout::{Message, poll as fanned};

    let hosts = GitHosts::start(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let refs = five_refs(&hosts, &receiver);
    let poller =
        Poller::new(&hosts, OperatorConfig { poll: refs.clone(), poll_in_flight: 1, ..OperatorConfig::default() });
    let (sqs, url, _) = ferry_tests::emulator::work_queue(2, 3).await;
    let queue = ferry::queue::SqsQueue::new(sqs.clone(), url.clone());
    let batch: Vec<Message> = refs
        .iter()
        .enumerate()
        .map(|(i, tracked)| Message {
            id: format!("m{i}"),
            body: serde_json::to_string(&fanned::Item { url: tracked.url.clone(), reference: "main".into() }).unwrap(),
        })
        .collect();
    hosts.rate_limit_next();
    let worked = fanned::work(poller.ports(), &queue, batch, None).await;
    assert_eq!((worked.failed.len(), worked.report.delivered, worked.report.left), (0, 0, 5), "{:?}", worked.report);
    assert_eq!(hosts.counts().0, 1, "one request met the limit; the others waited without asking");
    assert_eq!(super::fanout::held(&sqs, &url).await, 0, "nothing given back");
    let limited = poller.stored(&refs[0]).await.unwrap();
    assert!(limited.next_poll_at > ferry::domain::Clock::now(poller.clock.as_ref()), "waits for the reset");
    let next = fanned::plan(poller.ports(), &queue, None).await.unwrap();
    assert_eq!((next.not_due, next.queued), (1, 4), "the next plan queues the rest: {next:?}");
}

/// Five once-a-minute refs on one host, each delivering to `receiver`.
fn five_refs(hosts: &GitHosts, receiver: &Receiver) -> Vec<TrackedRef> {
    (0..5)
        .map(|i| {
            hosts.set(&format!("acme/r{i}"), "main", SHA_A);
            github(hosts, &format!("acme/r{i}"), Some(receiver.url()))
        })
        .collect()
}
