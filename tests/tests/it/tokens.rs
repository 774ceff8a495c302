//! App credentials end to end: JWTs a fake GitHub verifies, installation
//! tokens minted into the secret store, the rotator (a simulated day, two at
//! once, failures), the warm cache, repository tokens, and secret hygiene.

use std::sync::Arc;
use std::time::Duration;

use ferry::domain::tokens::StoredToken;
use ferry::domain::{Clock, Installation, InstallationId, SystemClock, Timestamp};
use ferry::forge::github::{GithubApp, KeySource};
use ferry::forge::{MintError, TokenMinter, TokenScope};
use ferry::secrets::{SecretError, SecretName, SecretStore};
use ferry::store::{Key, StateStore};
use ferry::usecase::rotate::rotate;
use ferry::usecase::tokens::{Credential, Need, Refreshed, TokenError, Tokens};
use ferry_tests::builders::repo;
use ferry_tests::github::{APP_ID, Answer, FakeGithub, SimClock, app_keys, stranger_keys};
use ferry_tests::logs;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

/// Ferry's side: embedded state and secrets in a temporary dir, tokens
/// through the fake with the App's real key.
struct World {
    _dir: tempfile::TempDir,
    state: Arc<dyn StateStore>,
    secrets: Arc<dyn SecretStore>,
    clock: Arc<SimClock>,
    fake: FakeGithub,
}

impl World {
    async fn new() -> Self {
        logs::capture();
        let dir = tempfile::tempdir().unwrap();
        let state: Arc<dyn StateStore> = Arc::new(ferry_tests::embedded::state_in(dir.path()));
        let secrets: Arc<dyn SecretStore> = Arc::new(ferry_tests::embedded::secrets_in(dir.path()));
        let clock = SimClock::at(Timestamp::now());
        let fake = FakeGithub::start(clock.clone()).await;
        Self { _dir: dir, state, secrets, clock, fake }
    }

    /// A token service as one function instance has it (its own cache).
    fn tokens(&self) -> Tokens {
        self.tokens_with(&app_keys().pkcs1_pem)
    }

    fn tokens_with(&self, pem: &SecretString) -> Tokens {
        let app = self.fake.app(pem, self.clock.clone());
        Tokens::new(self.secrets.clone(), Arc::new(app), self.clock.clone())
    }

    async fn install(&self, id: u64) {
        self.state.create(&Installation::new(InstallationId::new(id), "acme", "all").into()).await.unwrap();
    }

    async fn stored(&self, id: u64) -> Option<StoredToken> {
        let value = self.secrets.get(&SecretName::installation(InstallationId::new(id))).await.unwrap()?;
        Some(StoredToken::from_secret(&value).unwrap())
    }

    /// Puts a token the fake issued into the store, as a past rotation would.
    async fn store_token(&self, id: u64, expires_in: Duration) -> String {
        let token = format!("ghs_earlier{id}xxxxxxxxxxxxxxxxxxxxxxxxx");
        let stored = StoredToken {
            token: SecretString::from(token.clone()),
            expires_at: Some(self.clock.now().plus(expires_in)),
        };
        self.secrets.put(&SecretName::installation(InstallationId::new(id)), &stored.to_secret()).await.unwrap();
        token
    }

    /// Checks the fake saw only requests GitHub's description allows and no
    /// refused JWT, and that no secret reached a log line or the state.
    async fn assert_clean(&self) {
        assert_eq!(self.fake.violations(), Vec::<String>::new(), "requests outside GitHub's API description");
        let mut secrets: Vec<String> = self.fake.minted().into_iter().map(|m| m.token).collect();
        secrets.extend(self.fake.jwts());
        logs::assert_no_secrets(&secrets);
        let records = self.state.query(&ferry::store::Collection::Installations).await.unwrap();
        let state = format!("{records:?}");
        for secret in &secrets {
            assert!(!state.contains(secret.as_str()), "the state store holds a secret");
        }
        assert!(!state.contains("ghs_") && !state.contains("eyJ"));
    }
}

#[tokio::test]
async fn the_app_jwt_is_rs256_with_iss_and_a_ten_minute_window_github_accepts() {
    let world = World::new().await;
    for pem in [&app_keys().pkcs1_pem, &app_keys().pkcs8_pem] {
        let app = world.fake.app(pem, world.clock.clone());
        let minted = app.mint(InstallationId::new(7), &TokenScope::Installation).await.unwrap();
        assert!(minted.token.expose_secret().starts_with("ghs_"));
        assert!(world.fake.valid_for(minted.token.expose_secret(), Duration::from_secs(59 * 60)));
    }
    assert_eq!(world.fake.refused(), Vec::<String>::new());
    // The fake checks the window; here the claims themselves.
    let jwt = world.fake.jwts().pop().unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    let now = world.clock.now().unix();
    assert_eq!(claims["iss"], APP_ID.to_string());
    assert_eq!(claims["iat"], now - 60, "iat is a minute in the past");
    assert_eq!(claims["exp"], now + 9 * 60, "exp is ten minutes after iat");
    world.assert_clean().await;
}

#[tokio::test]
async fn github_accepts_the_jwt_with_its_clock_a_minute_either_way() {
    let world = World::new().await;
    for skew in [-60, -30, 0, 30, 60] {
        world.fake.skew(skew);
        let app = world.fake.app(&app_keys().pkcs1_pem, world.clock.clone());
        app.mint(InstallationId::new(1), &TokenScope::Installation)
            .await
            .unwrap_or_else(|e| panic!("skew {skew}: {e}"));
    }
    world.fake.skew(-120);
    let app = world.fake.app(&app_keys().pkcs1_pem, world.clock.clone());
    let refused = app.mint(InstallationId::new(1), &TokenScope::Installation).await.unwrap_err();
    assert!(matches!(refused, MintError::Unauthorized { .. }), "{refused:?}");
    world.assert_clean().await;
}

#[tokio::test]
async fn a_rotation_mints_only_where_the_stored_token_runs_short() {
    let world = World::new().await;
    for id in 1..=5 {
        world.install(id).await;
    }
    world.store_token(1, 50 * MINUTE).await; // fresh
    let due = world.store_token(2, 20 * MINUTE).await; // due
    // 3: no token yet
    let mut suspended = Installation::new(InstallationId::new(4), "acme", "all");
    suspended.suspended = true;
    world.state.delete(&Key::Installation(InstallationId::new(4))).await.unwrap();
    world.state.create(&suspended.into()).await.unwrap();
    world
        .secrets
        .put(&SecretName::installation(InstallationId::new(5)), &SecretString::from("{broken".to_owned()))
        .await
        .unwrap();

    let report = rotate(&world.tokens(), world.state.as_ref()).await.unwrap();
    let ids = |ids: &[InstallationId]| ids.iter().map(|i| i.get()).collect::<Vec<_>>();
    assert_eq!(ids(&report.minted), [2, 3, 5], "{report:?}");
    assert_eq!((report.fresh, report.suspended, report.failed.len()), (1, 1, 0));
    assert_eq!(world.fake.minted().len(), 3);
    for id in [2, 3, 5] {
        let stored = world.stored(id).await.unwrap();
        assert!(world.fake.valid_for(stored.token.expose_secret(), 59 * MINUTE), "installation {id}");
        let record =
            world.state.load::<Installation>(&Key::Installation(InstallationId::new(id))).await.unwrap().unwrap();
        assert_eq!(record.record.token_expires_at, stored.expires_at);
        assert_eq!(record.record.minting_until, None, "the lease is released");
    }
    assert_ne!(world.stored(2).await.unwrap().token.expose_secret(), due);

    let again = rotate(&world.tokens(), world.state.as_ref()).await.unwrap();
    assert!(again.minted.is_empty(), "a second rotation right after is idempotent: {again:?}");
    assert_eq!(again.fresh, 4);
    world.assert_clean().await;
}

#[tokio::test]
async fn a_failing_installation_keeps_its_token_and_does_not_stop_the_others() {
    let world = World::new().await;
    let failures = [
        (1, Answer::Status { status: 500, retry_after: None }),
        (2, Answer::Status { status: 404, retry_after: None }),
        (3, Answer::Status { status: 403, retry_after: Some(60) }),
        (4, Answer::Status { status: 429, retry_after: Some(30) }),
        (5, Answer::Status { status: 403, retry_after: None }),
    ];
    let mut kept = Vec::new();
    for (id, answer) in &failures {
        world.install(*id).await;
        kept.push((*id, world.store_token(*id, 20 * MINUTE).await));
        world.fake.always(*id, answer.clone());
    }
    world.install(6).await;

    let report = rotate(&world.tokens(), world.state.as_ref()).await.unwrap();
    assert_eq!(report.minted, [InstallationId::new(6)]);
    let problems: Vec<(u64, String)> =
        report.failed.iter().map(|f| (f.installation.get(), f.problem.clone())).collect();
    let expect = [
        (1, "GitHub could not be reached or failed: 500"),
        (2, "GitHub does not know installation 2 (404)"),
        (3, "GitHub is rate limiting the App; retry after 60s"),
        (4, "GitHub is rate limiting the App; retry after 30s"),
        (5, "GitHub refused the token (403: This installation has been suspended)"),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:?}");
    for ((id, problem), (want_id, want)) in problems.iter().zip(expect) {
        assert_eq!(*id, want_id);
        assert!(problem.contains(want), "installation {id}: {problem:?} does not say {want:?}");
    }
    for (id, token) in kept {
        assert_eq!(world.stored(id).await.unwrap().token.expose_secret(), token, "installation {id} lost its token");
        let record =
            world.state.load::<Installation>(&Key::Installation(InstallationId::new(id))).await.unwrap().unwrap();
        assert!(record.record.token_error.is_some() && record.record.minting_until.is_none());
    }
    // The next cycle retries, and a healed installation gets its token.
    world.fake.heal(1);
    let next = rotate(&world.tokens(), world.state.as_ref()).await.unwrap();
    assert_eq!(next.minted, [InstallationId::new(1)]);
    let healed = world.state.load::<Installation>(&Key::Installation(InstallationId::new(1))).await.unwrap().unwrap();
    assert_eq!(healed.record.token_error, None);
    world.assert_clean().await;
}

#[tokio::test]
async fn a_bad_private_key_is_a_clear_error_and_deletes_nothing() {
    let world = World::new().await;
    world.install(1).await;
    let token = world.store_token(1, 20 * MINUTE).await;
    let cases: [(SecretString, &str); 3] = [
        (SecretString::from("not a key at all".to_owned()), "it is not a PEM-encoded key"),
        (
            SecretString::from("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_owned()),
            "the App's private key is unusable",
        ),
        (stranger_keys().pkcs1_pem.clone(), "GitHub refused the App's credentials (401"),
    ];
    for (pem, says) in cases {
        let report = rotate(&world.tokens_with(&pem), world.state.as_ref()).await.unwrap();
        assert_eq!(report.failed.len(), 1);
        let problem = &report.failed[0].problem;
        assert!(problem.contains(says), "{problem:?} does not say {says:?}");
        assert!(!problem.contains("BEGIN") && !problem.contains("AAAA"), "{problem}");
        assert_eq!(world.stored(1).await.unwrap().token.expose_secret(), token, "the good token stays");
    }
    // From the secret store's app-private-key, picked up once it is put there, without a restart.
    let from_store = GithubApp::new(
        APP_ID,
        KeySource::Store(world.secrets.clone()),
        ferry::forge::github::GithubApi::new(&world.fake.url()),
        world.clock.clone(),
    );
    let error = from_store.mint(InstallationId::new(1), &TokenScope::Installation).await.unwrap_err();
    assert_eq!(error.to_string(), "the App's private key is unusable: the secret store holds no app-private-key");
    world.secrets.put(&SecretName::app_private_key(), &app_keys().pkcs1_pem).await.unwrap();
    from_store.mint(InstallationId::new(1), &TokenScope::Installation).await.unwrap();
    assert_eq!(world.fake.minted().len(), 1);

    let missing = GithubApp::new(
        APP_ID,
        KeySource::File("/nonexistent/ferry-app.pem".into()),
        ferry::forge::github::GithubApi::new(&world.fake.url()),
        world.clock.clone(),
    );
    let error = missing.mint(InstallationId::new(1), &TokenScope::Installation).await.unwrap_err();
    assert!(error.to_string().contains("cannot read /nonexistent/ferry-app.pem"), "{error}");
    assert_eq!(world.fake.minted().len(), 1);
    world.assert_clean().await;
}

#[tokio::test]
async fn two_rotations_at_once_mint_once_per_installation() {
    let world = World::new().await;
    for id in 1..=6 {
        world.install(id).await;
    }
    world.fake.delay(Duration::from_millis(300));
    let (one, two) = (world.tokens(), world.tokens());
    let (a, b) = tokio::join!(rotate(&one, world.state.as_ref()), rotate(&two, world.state.as_ref()));
    let (a, b) = (a.unwrap(), b.unwrap());
    for id in 1..=6 {
        assert_eq!(world.fake.mints_for(id), 1, "installation {id}: {a:?} {b:?}");
    }
    assert_eq!(a.minted.len() + b.minted.len(), 6);
    assert_eq!(a.leased.len() + b.leased.len() + a.fresh + b.fresh, 6, "the other skipped each: {a:?} {b:?}");
    world.assert_clean().await;
}

#[tokio::test]
async fn two_rotations_at_once_on_dynamodb_and_secrets_manager_mint_once_per_installation() {
    logs::capture();
    let state: Arc<dyn StateStore> = Arc::new(ferry_tests::emulator::dynamo_store().await);
    let secrets: Arc<dyn SecretStore> = Arc::new(ferry_tests::emulator::secrets_manager(None).await);
    let clock = SimClock::at(Timestamp::now());
    let fake = FakeGithub::start(clock.clone()).await;
    fake.delay(Duration::from_millis(300));
    for id in 1..=4 {
        state.create(&Installation::new(InstallationId::new(id), "acme", "all").into()).await.unwrap();
    }
    let tokens =
        || Tokens::new(secrets.clone(), Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone())), clock.clone());
    let (one, two) = (tokens(), tokens());
    let (a, b) = tokio::join!(rotate(&one, state.as_ref()), rotate(&two, state.as_ref()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.minted.len() + b.minted.len(), 4, "{a:?} {b:?}");
    for id in 1..=4 {
        assert_eq!(fake.mints_for(id), 1, "installation {id}");
        let stored = secrets.get(&SecretName::installation(InstallationId::new(id))).await.unwrap().unwrap();
        let stored = StoredToken::from_secret(&stored).unwrap();
        assert!(fake.valid_for(stored.token.expose_secret(), 59 * MINUTE));
    }
    assert_eq!(fake.violations(), Vec::<String>::new());
}

/// A day on a simulated clock, the rotator every 30 minutes, GitHub's clock
/// a minute ahead or behind: at every minute each installation has a stored
/// token GitHub issued with at least ten minutes left, and no installation
/// gets more than one mint per rotation window.
#[tokio::test]
async fn a_simulated_day_never_leaves_an_installation_without_a_valid_token() {
    for skew in [-60, 60] {
        let world = World::new().await;
        world.fake.skew(skew);
        for id in 1..=3 {
            world.install(id).await;
        }
        let tokens = world.tokens();
        let mut windows: std::collections::HashMap<(u64, u64), usize> = Default::default();
        let mut late_installation = false;
        for minute in 0..24 * 60 {
            if minute == 437 {
                // Installed mid-day: the installation event mints at once.
                world.install(4).await;
                let minted = tokens
                    .refresh(
                        world.state.as_ref(),
                        InstallationId::new(4),
                        Need::Within(ferry::domain::tokens::ROTATE_WITHIN),
                    )
                    .await
                    .unwrap();
                assert!(matches!(minted, Refreshed::Minted(_)));
                late_installation = true;
            }
            if minute % 30 == 0 {
                let before = world.fake.minted().len();
                let report = rotate(&tokens, world.state.as_ref()).await.unwrap();
                assert!(report.failed.is_empty(), "minute {minute}: {report:?}");
                for minted in &world.fake.minted()[before..] {
                    *windows.entry((minted.installation, minute / 30)).or_default() += 1;
                }
            }
            let installations: &[u64] = if late_installation { &[1, 2, 3, 4] } else { &[1, 2, 3] };
            for id in installations {
                let stored = world.stored(*id).await.unwrap_or_else(|| panic!("minute {minute}: no token for {id}"));
                assert!(
                    world.fake.valid_for(stored.token.expose_secret(), 10 * MINUTE),
                    "skew {skew}, minute {minute}: installation {id} has no token valid for 10 more minutes"
                );
            }
            world.clock.advance(MINUTE);
        }
        assert!(windows.values().all(|n| *n <= 1), "more than one mint in a window: {windows:?}");
        // Each of the 3 gets a token every window after the first rotations: about 48 a day, not 1,440.
        let mints = world.fake.mints_for(1);
        assert!((24..=49).contains(&mints), "installation 1 was minted {mints} tokens in a day");
        world.assert_clean().await;
    }
}

/// Counts reads, to prove the warm path never touches the secret store.
struct Counting {
    inner: Arc<dyn SecretStore>,
    gets: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl SecretStore for Counting {
    async fn get(&self, name: &SecretName) -> Result<Option<SecretString>, SecretError> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(name).await
    }
    async fn put(&self, name: &SecretName, value: &SecretString) -> Result<(), SecretError> {
        self.inner.put(name, value).await
    }
    async fn delete(&self, name: &SecretName) -> Result<(), SecretError> {
        self.inner.delete(name).await
    }
}

#[tokio::test]
async fn warm_calls_use_the_cache_and_a_token_running_short_or_refused_is_replaced_once() {
    let world = World::new().await;
    world.install(1).await;
    let counting = Arc::new(Counting { inner: world.secrets.clone(), gets: Default::default() });
    let app = world.fake.app(&app_keys().pkcs1_pem, world.clock.clone());
    let tokens = Tokens::new(counting.clone(), Arc::new(app), world.clock.clone());
    let credential = Credential::Installation(InstallationId::new(1));
    let gets = || counting.gets.load(std::sync::atomic::Ordering::SeqCst);

    let stored = world.store_token(1, 50 * MINUTE).await;
    let first = tokens.token(world.state.as_ref(), &credential).await.unwrap();
    assert_eq!(first.expose_secret(), stored);
    let cold = gets();
    for _ in 0..100 {
        assert_eq!(tokens.token(world.state.as_ref(), &credential).await.unwrap().expose_secret(), stored);
    }
    assert_eq!(gets(), cold, "warm calls read nothing");
    assert_eq!(world.fake.minted().len(), 0);

    // 41 minutes on, 9 are left: the cache refreshes, minting since no rotator ran.
    world.clock.advance(41 * MINUTE);
    let renewed = tokens.token(world.state.as_ref(), &credential).await.unwrap();
    assert_ne!(renewed.expose_secret(), stored);
    assert_eq!(world.fake.mints_for(1), 1);
    assert_eq!(world.stored(1).await.unwrap().token.expose_secret(), renewed.expose_secret());

    // GitHub answers 401 to it (revoked): one replacement, then warm again.
    tokens.refused(&credential, &renewed);
    let replaced = tokens.token(world.state.as_ref(), &credential).await.unwrap();
    assert_ne!(replaced.expose_secret(), renewed.expose_secret());
    assert_eq!(world.fake.mints_for(1), 2);
    let _ = tokens.token(world.state.as_ref(), &credential).await.unwrap();
    assert_eq!(world.fake.mints_for(1), 2, "replaced once");

    // Another instance's cache finds the replacement in the store, no mint.
    let other = world.tokens();
    assert_eq!(other.token(world.state.as_ref(), &credential).await.unwrap().expose_secret(), replaced.expose_secret());
    assert_eq!(world.fake.mints_for(1), 2);
    world.assert_clean().await;
}

#[tokio::test]
async fn repository_tokens_come_from_the_store_and_are_never_minted() {
    let world = World::new().await;
    let tokens = world.tokens();
    let credential = Credential::Repository(repo("acme/api"));
    let missing = tokens.token(world.state.as_ref(), &credential).await.unwrap_err();
    assert!(matches!(missing, TokenError::Missing(_)), "{missing}");
    assert_eq!(missing.to_string(), "no token is stored for repository acme/api");

    let name = SecretName::repository(&repo("acme/api")).unwrap();
    assert_eq!(name.as_str(), "repositories/acme/api");
    world.secrets.put(&name, &SecretString::from("ghp_personalaccesstoken0001".to_owned())).await.unwrap();
    let token = tokens.token(world.state.as_ref(), &credential).await.unwrap();
    assert_eq!(token.expose_secret(), "ghp_personalaccesstoken0001");
    world.clock.advance(Duration::from_secs(30 * 24 * 3600));
    assert_eq!(tokens.token(world.state.as_ref(), &credential).await.unwrap().expose_secret(), token.expose_secret());

    tokens.refused(&credential, &token);
    let refused = tokens.token(world.state.as_ref(), &credential).await.unwrap_err();
    assert_eq!(refused.to_string(), "GitHub refused the token stored for repository acme/api: replace it");
    world.secrets.put(&name, &SecretString::from("ghp_personalaccesstoken0002".to_owned())).await.unwrap();
    assert_eq!(
        tokens.token(world.state.as_ref(), &credential).await.unwrap().expose_secret(),
        "ghp_personalaccesstoken0002"
    );
    assert_eq!(world.fake.minted().len(), 0);
    world.assert_clean().await;
}

#[tokio::test]
async fn a_pipeline_gets_a_token_for_one_repository_that_can_only_read_it() {
    let world = World::new().await;
    world.install(9).await;
    let tokens = world.tokens();
    let minted = tokens.clone_token(world.state.as_ref(), InstallationId::new(9), &repo("acme/api")).await.unwrap();
    let seen = world.fake.minted().pop().unwrap();
    assert_eq!(seen.token, minted.token.expose_secret());
    assert_eq!(seen.body, Some(json!({"repositories": ["api"], "permissions": {"contents": "read"}})));
    assert_eq!(world.stored(9).await.map(|s| s.token.expose_secret().to_owned()), None, "never stored");

    let mut suspended =
        world.state.load::<Installation>(&Key::Installation(InstallationId::new(9))).await.unwrap().unwrap();
    suspended.record.suspended = true;
    world.state.update(&suspended.record.into(), suspended.version).await.unwrap();
    let refused =
        tokens.clone_token(world.state.as_ref(), InstallationId::new(9), &repo("acme/api")).await.unwrap_err();
    assert!(matches!(refused, TokenError::Suspended(_)));
    world.assert_clean().await;
}

/// The installation lifecycle through the real webhook handler.
#[tokio::test]
async fn installation_events_mint_suspend_resume_and_delete_tokens() {
    logs::capture();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = FakeGithub::start(clock.clone()).await;
    let harness = ferry_tests::webhook::Harness::with_minter(
        "hook-secret",
        Arc::new(fake.app(&app_keys().pkcs1_pem, clock.clone())),
    )
    .await;
    let event = |action: &str| {
        json!({
            "action": action,
            "installation": {"id": 77, "account": {"login": "acme"}, "repository_selection": "selected",
                             "updated_at": "2026-11-19T08:00:00Z"},
            "repositories": [{"full_name": "acme/api"}, {"full_name": "acme/web"}],
            "sender": {"login": "octocat"}
        })
        .to_string()
    };
    let secret = SecretName::installation(InstallationId::new(77));
    let stored = || async { harness.context.secrets.get(&secret).await.unwrap() };
    let actions = |body: &serde_json::Value| -> Vec<String> {
        body["actions"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap().to_owned()).collect()
    };

    let (status, body) = harness.deliver("installation", "life-1", "hook-secret", &event("created")).await;
    assert_eq!(status, 200, "{body}");
    assert!(actions(&body).contains(&"token.minted".to_owned()), "{body}");
    let first = StoredToken::from_secret(&stored().await.unwrap()).unwrap();
    assert!(fake.valid_for(first.token.expose_secret(), 59 * MINUTE));
    assert!(!body.to_string().contains("ghs_"), "the reply shows no token");

    let (_, body) = harness.deliver("installation", "life-2", "hook-secret", &event("suspend")).await;
    assert_eq!(actions(&body), ["installation.suspended"]);
    let report = rotate(&harness.context.tokens, harness.state()).await.unwrap();
    assert_eq!((report.suspended, report.minted.len()), (1, 0), "no minting while suspended");
    let record =
        harness.state().load::<Installation>(&Key::Installation(InstallationId::new(77))).await.unwrap().unwrap();
    assert_eq!(record.record.token_expires_at, first.expires_at, "suspending keeps what Ferry knows of the token");

    let (_, body) = harness.deliver("installation", "life-3", "hook-secret", &event("unsuspend")).await;
    assert!(actions(&body).contains(&"token.minted".to_owned()), "{body}");
    assert_eq!(fake.mints_for(77), 2, "GitHub revoked tokens on suspension: a new one");

    let (_, body) = harness.deliver("installation", "life-4", "hook-secret", &event("new_permissions_accepted")).await;
    assert!(actions(&body).contains(&"token.minted".to_owned()), "{body}");
    assert_eq!(fake.mints_for(77), 3, "tokens minted before carry the old permissions");

    let (_, body) = harness.deliver("installation", "life-5", "hook-secret", &event("deleted")).await;
    assert_eq!(actions(&body), ["installation.removed", "token.deleted", "repository.removed", "repository.removed"]);
    assert!(stored().await.is_none(), "the token is deleted");
    assert!(harness.state().get(&Key::Installation(InstallationId::new(77))).await.unwrap().is_none());
    assert!(harness.state().get(&Key::Repository(repo("acme/api"))).await.unwrap().is_none());
    assert_eq!(fake.violations(), Vec::<String>::new());
    let mut secrets: Vec<String> = fake.minted().into_iter().map(|m| m.token).collect();
    secrets.extend(fake.jwts());
    logs::assert_no_secrets(&secrets);
}

/// Fanned out over the emulator's SQS: the planner queues one item per
/// installation; the workers refresh each token once. A rate limit on
/// minting (the App's own budget) sends its item back on the queue,
/// delayed by GitHub's `Retry-After`, and fails nothing; an item that is
/// not an installation comes back until it is dead-lettered.
#[tokio::test]
async fn fanned_out_each_installation_is_one_item_and_a_rate_limited_mint_waits_on_the_queue() {
    use aws_sdk_sqs::types::QueueAttributeName;
    use ferry::queue::{SqsQueue, WorkQueue};
    use ferry::usecase::fanout::rotate;

    use super::fanout::{count, drain, held};

    let world = World::new().await;
    for id in 1..=5 {
        world.install(id).await;
    }
    world.store_token(1, 50 * MINUTE).await; // fresh
    world.fake.always(4, Answer::Status { status: 429, retry_after: Some(30) });
    let (sqs, url, dead) = ferry_tests::emulator::work_queue(1, 2).await;
    let queue = SqsQueue::new(sqs.clone(), url.clone());
    let tokens = world.tokens();

    let planned = rotate::plan(world.state.as_ref(), &queue).await;
    assert_eq!((planned.queued, planned.total(), planned.problems.len()), (5, 0, 0), "{planned:?}");
    let unknown = r#"{"installation":99}"#.to_owned();
    queue
        .send(&[(r#"{"installation":"4; rm -rf /"}"#.to_owned(), Duration::ZERO), (unknown, Duration::ZERO)])
        .await
        .unwrap();
    let batches =
        drain(&sqs, &url, |messages| rotate::work(&tokens, world.state.as_ref(), &queue, messages, None)).await;

    let mut report = ferry::usecase::rotate::RotationReport::default();
    let mut failed = Vec::new();
    for worked in batches {
        failed.extend(worked.failed);
        report.add(worked.report);
    }
    report.minted.sort();
    let ids = |ids: &[InstallationId]| ids.iter().map(|i| i.get()).collect::<Vec<_>>();
    assert_eq!(ids(&report.minted), [2, 3, 5], "each minted once: {report:?}");
    assert_eq!((report.fresh, report.left, report.failed.len()), (1, 1, 0), "{report:?}");
    assert_eq!(failed.len(), 2, "the unreadable item, once per receive");
    assert_eq!(
        count(&sqs, &url, QueueAttributeName::ApproximateNumberOfMessagesDelayed).await,
        1,
        "installation 4 waits"
    );
    assert_eq!(held(&sqs, &dead).await, 1);
    assert_eq!(world.fake.minted().len(), 3);
    let unknown = world.state.load::<Installation>(&Key::Installation(InstallationId::new(99))).await.unwrap();
    assert!(unknown.is_none(), "an item names no installation into being");
    world.assert_clean().await;
}
