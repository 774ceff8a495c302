//! A fake GitHub for the App credential flow (wiremock): it verifies every
//! App JWT with the public key (signature, `iss`, the `iat`/`exp` window on
//! its own clock, which may be skewed from Ferry's), checks every request
//! and answer against GitHub's OpenAPI description, counts mints, and can be
//! told to fail for an installation as GitHub does.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ferry::domain::{Clock, Timestamp};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

use crate::openapi;

/// An App key pair, made once per test run: the PEM Ferry signs with (both
/// encodings GitHub users meet) and the public half the fake verifies with.
pub struct AppKeys {
    /// `-----BEGIN RSA PRIVATE KEY-----`, what GitHub hands out.
    pub pkcs1_pem: SecretString,
    /// `-----BEGIN PRIVATE KEY-----`, what `openssl pkcs8` makes of it.
    pub pkcs8_pem: SecretString,
    public: Vec<u8>,
}

/// The App's keys, and another pair GitHub does not know.
pub fn app_keys() -> &'static AppKeys {
    static KEYS: OnceLock<AppKeys> = OnceLock::new();
    KEYS.get_or_init(generate)
}

pub fn stranger_keys() -> &'static AppKeys {
    static KEYS: OnceLock<AppKeys> = OnceLock::new();
    KEYS.get_or_init(generate)
}

fn generate() -> AppKeys {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
    let pkcs8 = pair.as_der().expect("PKCS#8 DER").as_ref().to_vec();
    let pkcs1 = pkcs1_of(&pkcs8);
    AppKeys {
        pkcs1_pem: SecretString::from(pem("RSA PRIVATE KEY", &pkcs1)),
        pkcs8_pem: SecretString::from(pem("PRIVATE KEY", &pkcs8)),
        public: pair.public_key().as_ref().to_vec(),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo: the last element of
/// its outer SEQUENCE, an OCTET STRING.
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    fn header(der: &[u8]) -> (u8, usize, usize) {
        let tag = der[0];
        let (len, skip) = match der[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let bytes = (n & 0x7f) as usize;
                (der[2..2 + bytes].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize), 2 + bytes)
            }
        };
        (tag, skip, len)
    }
    let (tag, skip, _) = header(pkcs8);
    assert_eq!(tag, 0x30, "PKCS#8 is a SEQUENCE");
    let mut rest = &pkcs8[skip..];
    loop {
        let (tag, skip, len) = header(rest);
        if tag == 0x04 {
            return rest[skip..skip + len].to_vec();
        }
        rest = &rest[skip + len..];
    }
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct SimClock(AtomicI64);

impl SimClock {
    pub fn at(start: Timestamp) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(start.unix())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(i64::try_from(by.as_secs()).expect("a sane duration"), Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

/// How the fake answers a mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Mint,
    /// An error status as GitHub sends it, with `Retry-After` when given.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
}

/// One token the fake issued.
#[derive(Debug, Clone)]
pub struct Minted {
    pub installation: u64,
    pub token: String,
    /// On the fake's clock.
    pub issued_at: i64,
    pub expires_at: i64,
    pub body: Option<Value>,
}

/// What the fake holds of repositories: files, pull request files, and
/// everything Ferry reported.
#[derive(Default, Clone, Debug)]
pub struct Repos {
    /// `(repo, path)` to text.
    pub files: HashMap<(String, String), String>,
    /// `(repo, number)` to changed paths.
    pub pr_files: HashMap<(String, u64), Vec<String>>,
    /// `(repo, reference)` to SHA.
    pub commits: HashMap<(String, String), String>,
    /// `(repo, sha, body)` of every status posted.
    pub statuses: Vec<(String, String, Value)>,
    /// Every deployment `(repo, body)` and deployment status `(repo, id, body)`.
    pub deployments: Vec<(String, Value)>,
    pub deployment_statuses: Vec<(String, u64, Value)>,
    /// `(repo, number, id, body)` of every comment.
    pub comments: Vec<(String, u64, u64, String)>,
    /// `(repo, login)` to a permission (`admin`, `maintain`, `write`,
    /// `triage`, `read`); anyone else is not a collaborator (404).
    pub permissions: HashMap<(String, String), String>,
    /// `repo` to its open pull requests, as `GET /repos/{o}/{r}/pulls` lists them.
    pub open_pulls: HashMap<String, Vec<Value>>,
    /// `repo` to its releases, newest first.
    pub releases: HashMap<String, Vec<Value>>,
    /// Answer 502 to this many listings (pull requests, releases): an outage.
    pub fail_listings: usize,
    /// Repositories whose listings answer 403 with the rate limit spent and
    /// `Retry-After` this many seconds, as GitHub does.
    pub rate_limited: HashMap<String, u64>,
    /// The App's webhook log, newest first (`GET /app/hook/deliveries`).
    pub hook_deliveries: Vec<Value>,
    /// Attempts Ferry asked to redeliver.
    pub redelivered: Vec<u64>,
    /// `(repo, body)` of every check run created.
    pub check_runs: Vec<(String, Value)>,
    /// Answer 403 to check runs (an App installed without `checks: write`).
    pub no_checks_permission: bool,
    /// Listings answered 304 (unchanged since the ETag Ferry sent).
    pub not_modified: usize,
    /// Rate-limit units spent on repository calls, by token: every answer
    /// but a 304 costs one, as on GitHub.
    pub units: HashMap<String, u64>,
    /// Personal access tokens the fake accepts (repository-token mode).
    pub pats: Vec<String>,
    /// `repo` to its webhooks, as GitHub describes them.
    pub hooks: HashMap<String, Vec<Value>>,
    /// Answer 404 to webhook creation (no admin right on the repository).
    pub hooks_forbidden: bool,
    /// The OAuth app (`client_id`, `client_secret`) the fake knows.
    pub oauth_client: Option<(String, String)>,
    /// OAuth codes not used yet, to the login each belongs to.
    pub oauth_codes: HashMap<String, String>,
    /// User tokens issued, to their login.
    pub oauth_tokens: HashMap<String, String>,
    /// Answer 401 to this many calls (a revoked token).
    pub refuse_next: usize,
    /// A comment's author by id: the credential's that created it (the App's
    /// bot for an installation token); a seeded one not named here is the bot's.
    pub comment_authors: HashMap<u64, String>,
    /// A personal access token's user (`GET /user`); [`PAT_OWNER`] when not named.
    pub pat_logins: HashMap<String, String>,
    /// `(METHOD path, token)` of every repository call answered: which
    /// credential each was made with.
    pub calls: Vec<(String, String)>,
}

#[derive(Default)]
struct Book {
    repos: Repos,
    minted: Vec<Minted>,
    jwts: Vec<String>,
    refused: Vec<String>,
    violations: Vec<String>,
    scripted: HashMap<u64, VecDeque<Answer>>,
    always: HashMap<u64, Answer>,
}

struct Shared {
    app_id: u64,
    public: Vec<u8>,
    clock: Arc<dyn Clock>,
    /// The fake's clock minus Ferry's, in seconds.
    skew: AtomicI64,
    delay: Mutex<Duration>,
    /// How long every repository call takes to answer.
    answer_delay: Mutex<Duration>,
    book: Mutex<Book>,
}

/// GitHub, as far as App credentials go.
pub struct FakeGithub {
    server: MockServer,
    shared: Arc<Shared>,
}

pub const APP_ID: u64 = 4242;

/// The App's slug: its comments are written by `ferry-test[bot]`.
pub const APP_SLUG: &str = "ferry-test";

/// The user a personal access token acts as when [`Repos::pat_logins`] does not say.
pub const PAT_OWNER: &str = "pat-owner";

/// The login the App's installation tokens act as.
pub fn app_login() -> String {
    format!("{APP_SLUG}[bot]")
}

/// How long the tokens the fake issues live, as GitHub's do.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl FakeGithub {
    /// A fake that knows [`app_keys`] as App [`APP_ID`], on `clock`.
    pub async fn start(clock: Arc<dyn Clock>) -> Self {
        let server = MockServer::builder().disable_request_recording().start().await;
        let shared = Arc::new(Shared {
            app_id: APP_ID,
            public: app_keys().public.clone(),
            clock,
            skew: AtomicI64::new(0),
            delay: Mutex::new(Duration::ZERO),
            answer_delay: Mutex::new(Duration::ZERO),
            book: Mutex::default(),
        });
        Mock::given(matchers::method("POST"))
            .and(matchers::path_regex(r"^/app/installations/[^/]+/access_tokens$"))
            .respond_with(MintResponder(shared.clone()))
            .mount(&server)
            .await;
        Mock::given(matchers::path_regex(r"^/repos/")).respond_with(RepoResponder(shared.clone())).mount(&server).await;
        Mock::given(matchers::method("POST"))
            .and(matchers::path("/login/oauth/access_token"))
            .respond_with(OauthResponder(shared.clone()))
            .mount(&server)
            .await;
        Mock::given(matchers::method("GET"))
            .and(matchers::path("/user"))
            .respond_with(OauthResponder(shared.clone()))
            .mount(&server)
            .await;
        Mock::given(matchers::method("GET"))
            .and(matchers::path("/app"))
            .respond_with(AppResponder(shared.clone()))
            .mount(&server)
            .await;
        Mock::given(matchers::path_regex(r"^/app/hook/deliveries"))
            .respond_with(HookResponder(shared.clone()))
            .mount(&server)
            .await;
        Mock::given(matchers::any()).respond_with(Unknown(shared.clone())).with_priority(10).mount(&server).await;
        Self { server, shared }
    }

    /// The API base to configure Ferry with.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.server.uri()).expect("the server's URI")
    }

    /// Ferry's client for this fake, signing with `pem`.
    pub fn app(&self, pem: &SecretString, clock: Arc<dyn Clock>) -> ferry::forge::github::GithubApp {
        let api = ferry::forge::github::GithubApi::new(&self.url());
        ferry::forge::github::GithubApp::new(APP_ID, ferry::forge::github::KeySource::Pem(pem.clone()), api, clock)
    }

    /// Sets the fake's clock `seconds` ahead of Ferry's (behind if negative).
    pub fn skew(&self, seconds: i64) {
        self.shared.skew.store(seconds, Ordering::SeqCst);
    }

    /// Answers every repository call after `delay`, as GitHub takes its time.
    pub fn answer_after(&self, delay: Duration) {
        *self.shared.answer_delay.lock().unwrap() = delay;
    }

    /// Answers every mint after `delay`, so concurrent callers overlap.
    pub fn delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// The next mints for `installation` get these answers, then normal ones.
    pub fn script(&self, installation: u64, answers: impl IntoIterator<Item = Answer>) {
        self.shared.book.lock().unwrap().scripted.entry(installation).or_default().extend(answers);
    }

    /// Every mint for `installation` gets `answer` until told otherwise.
    pub fn always(&self, installation: u64, answer: Answer) {
        self.shared.book.lock().unwrap().always.insert(installation, answer);
    }

    pub fn heal(&self, installation: u64) {
        self.shared.book.lock().unwrap().always.remove(&installation);
    }

    /// The fake's current time.
    pub fn now(&self) -> i64 {
        self.shared.now()
    }

    pub fn minted(&self) -> Vec<Minted> {
        self.shared.book.lock().unwrap().minted.clone()
    }

    pub fn mints_for(&self, installation: u64) -> usize {
        self.minted().iter().filter(|m| m.installation == installation).count()
    }

    /// Every JWT presented, valid or not.
    pub fn jwts(&self) -> Vec<String> {
        self.shared.book.lock().unwrap().jwts.clone()
    }

    /// Why JWTs were refused.
    pub fn refused(&self) -> Vec<String> {
        self.shared.book.lock().unwrap().refused.clone()
    }

    /// Requests or answers GitHub's OpenAPI description does not allow; must stay empty.
    pub fn violations(&self) -> Vec<String> {
        self.shared.book.lock().unwrap().violations.clone()
    }

    /// Changes what the fake holds of repositories.
    pub fn repos(&self, change: impl FnOnce(&mut Repos)) {
        change(&mut self.shared.book.lock().unwrap().repos);
    }

    /// What the fake holds of repositories, and what Ferry reported.
    pub fn reported(&self) -> Repos {
        self.shared.book.lock().unwrap().repos.clone()
    }

    /// Whether `token` is one the fake issued and still valid for `at_least` on its clock.
    pub fn valid_for(&self, token: &str, at_least: Duration) -> bool {
        let now = self.now();
        self.minted().iter().any(|m| m.token == token && m.expires_at - now >= at_least.as_secs() as i64)
    }
}

impl Shared {
    fn now(&self) -> i64 {
        self.clock.now().unix() + self.skew.load(Ordering::SeqCst)
    }

    fn violation(&self, problem: String) {
        self.book.lock().unwrap().violations.push(problem);
    }

    /// Verifies the App JWT as GitHub does, on the fake's clock.
    fn verify_jwt(&self, request: &Request) -> Result<(), String> {
        let header = request.headers.get("authorization").ok_or("no Authorization header")?;
        let jwt = header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or("not a Bearer credential")?;
        self.book.lock().unwrap().jwts.push(jwt.to_owned());
        let parts: Vec<&str> = jwt.split('.').collect();
        let [head, claims, signature] = parts[..] else { return Err("not a JWT".into()) };
        let decode = |part: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| format!("bad base64url: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|e| format!("bad JSON: {e}"))
        };
        let (head, claims) = (decode(head)?, decode(claims)?);
        if head["alg"] != "RS256" {
            return Err(format!("alg {} is not RS256", head["alg"]));
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| format!("bad signature encoding: {e}"))?;
        let signed = &jwt[..jwt.rfind('.').expect("three parts")];
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.public)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "A JSON web token could not be decoded".to_owned())?;
        let issuer = match &claims["iss"] {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        if issuer != Some(self.app_id) {
            return Err(format!("'Issuer' claim ('iss') {} is not App {}", claims["iss"], self.app_id));
        }
        let (iat, exp) = (claims["iat"].as_i64().ok_or("no iat")?, claims["exp"].as_i64().ok_or("no exp")?);
        let now = self.now();
        if iat > now {
            return Err(format!(
                "'Issued at' claim ('iat') must be an Integer representing a time in the past ({iat} > {now})"
            ));
        }
        if exp <= now {
            return Err("'Expiration time' claim ('exp') is in the past".into());
        }
        if exp - now > 600 {
            return Err("'Expiration time' claim ('exp') is too far in the future".into());
        }
        Ok(())
    }
}

struct MintResponder(Arc<Shared>);

impl Respond for MintResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let shared = &self.0;
        let delay = *shared.delay.lock().unwrap();
        let body: Option<Value> =
            (!request.body.is_empty()).then(|| serde_json::from_slice(&request.body).ok()).flatten();
        let operation = match openapi::operation(request.method.as_str(), request.url.path()) {
            Ok(operation) => operation,
            Err(problem) => {
                shared.violation(problem);
                return ResponseTemplate::new(404);
            }
        };
        if !request.body.is_empty() && body.is_none() {
            shared.violation("the request body is not JSON".into());
        }
        if let Err(problem) = operation.check_request(body.as_ref()) {
            shared.violation(problem);
        }
        if request.headers.get("accept").and_then(|v| v.to_str().ok()) != Some("application/vnd.github+json") {
            shared.violation("Accept is not application/vnd.github+json".into());
        }
        let answer = |status: u16, value: Value| {
            if let Err(problem) = operation.check_response(status, &value) {
                shared.violation(format!("the fake itself: {problem}"));
            }
            ResponseTemplate::new(status).set_body_json(value).set_delay(delay)
        };
        if let Err(problem) = shared.verify_jwt(request) {
            shared.book.lock().unwrap().refused.push(problem.clone());
            return answer(401, json!({ "message": problem, "documentation_url": "https://docs.github.com/rest" }));
        }
        let installation: u64 = request.url.path().split('/').nth(3).and_then(|s| s.parse().ok()).unwrap_or(0);
        let scripted = {
            let mut book = shared.book.lock().unwrap();
            book.scripted
                .get_mut(&installation)
                .and_then(VecDeque::pop_front)
                .or_else(|| book.always.get(&installation).cloned())
                .unwrap_or(Answer::Mint)
        };
        match scripted {
            Answer::Status { status, retry_after } => {
                let message = match status {
                    404 => "Not Found",
                    403 if retry_after.is_some() => "You have exceeded a secondary rate limit",
                    403 => "This installation has been suspended",
                    429 => "Too many requests",
                    _ => "Server Error",
                };
                let mut template = if operation.check_response(status, &json!({"message": message})).is_ok() {
                    answer(status, json!({ "message": message, "documentation_url": "https://docs.github.com/rest" }))
                } else {
                    // Statuses the description does not list (429, 5xx) come as GitHub sends them.
                    ResponseTemplate::new(status).set_body_json(json!({ "message": message })).set_delay(delay)
                };
                if let Some(seconds) = retry_after {
                    template = template.insert_header("retry-after", seconds.to_string().as_str());
                }
                template
            }
            Answer::Mint => {
                let now = shared.now();
                let token = format!("ghs_{}", uuid::Uuid::new_v4().simple());
                let expires_at = now + TOKEN_LIFETIME.as_secs() as i64;
                let minted =
                    Minted { installation, token: token.clone(), issued_at: now, expires_at, body: body.clone() };
                shared.book.lock().unwrap().minted.push(minted);
                let expires = Timestamp::from_unix(expires_at).to_rfc3339();
                let repositories = body.as_ref().and_then(|b| b.get("repositories")).is_some();
                answer(
                    201,
                    json!({
                        "token": token,
                        "expires_at": expires,
                        "permissions": body.as_ref().and_then(|b| b.get("permissions").cloned()).unwrap_or(json!({"contents": "write", "statuses": "write"})),
                        "repository_selection": if repositories { "selected" } else { "all" },
                    }),
                )
            }
        }
    }
}

/// GitHub's OAuth web flow (`POST /login/oauth/access_token`, not part of
/// the REST description, answered as GitHub documents it: 200 with an
/// `error` for a bad code) and `GET /user` (checked against the description).
struct OauthResponder(Arc<Shared>);

impl Respond for OauthResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let shared = &self.0;
        let mut book = shared.book.lock().unwrap();
        if request.url.path() == "/user" {
            if let Err(problem) = openapi::operation("GET", "/user") {
                book.violations.push(problem);
            }
            let token = request
                .headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or_default();
            let pat = book
                .repos
                .pats
                .iter()
                .any(|p| p == token)
                .then(|| book.repos.pat_logins.get(token).cloned().unwrap_or_else(|| PAT_OWNER.to_owned()));
            return match book.repos.oauth_tokens.get(token).cloned().or(pat) {
                Some(login) => {
                    ResponseTemplate::new(200).set_body_json(json!({"login": login, "id": 1, "type": "User"}))
                }
                None => ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"})),
            };
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body).into_owned().collect();
        let client = (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        );
        if book.repos.oauth_client.as_ref() != Some(&client) {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."}));
        }
        let code = form.get("code").cloned().unwrap_or_default();
        match book.repos.oauth_codes.remove(&code) {
            Some(login) => {
                let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
                book.repos.oauth_tokens.insert(token.clone(), login);
                ResponseTemplate::new(200).set_body_json(json!({"access_token": token, "token_type": "bearer", "scope": "repo,admin:repo_hook"}))
            }
            None => ResponseTemplate::new(200)
                .set_body_json(json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."})),
        }
    }
}

/// The App's webhook log: listed by cursor pages of `per_page`, the next
/// page named in a `Link` header as GitHub does; redelivery recorded.
struct HookResponder(Arc<Shared>);

/// A listing page with its ETag, as GitHub gives: asked again with it and
/// unchanged, the answer is a 304 with no body.
fn conditional(repos: &mut Repos, request: &Request, listed: &Value) -> ResponseTemplate {
    let body = listed.to_string();
    let etag = format!("W/\"{}\"", &ferry_sha256(&body)[..16]);
    let if_none_match = request.headers.get("if-none-match").and_then(|v| v.to_str().ok());
    if if_none_match == Some(etag.as_str()) {
        repos.not_modified += 1;
        return ResponseTemplate::new(304).insert_header("etag", etag.as_str());
    }
    ResponseTemplate::new(200).insert_header("etag", etag.as_str()).set_body_raw(body, "application/json")
}

impl Respond for HookResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let shared = &self.0;
        let path = request.url.path().to_owned();
        if let Err(problem) = openapi::operation(request.method.as_str(), &path) {
            shared.violation(problem);
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        }
        if let Err(problem) = shared.verify_jwt(request) {
            shared.book.lock().unwrap().refused.push(problem.clone());
            return ResponseTemplate::new(401).set_body_json(json!({"message": problem}));
        }
        let query: HashMap<String, String> =
            request.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let mut book = shared.book.lock().unwrap();
        match (request.method.as_str(), path.trim_start_matches("/app/hook/deliveries")) {
            ("GET", "") => {
                let per_page: usize = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
                let start: usize = query.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
                let all = book.repos.hook_deliveries.len();
                let listed: Vec<Value> =
                    book.repos.hook_deliveries.iter().skip(start).take(per_page).cloned().collect();
                let mut answer = conditional(&mut book.repos, request, &Value::from(listed));
                if start + per_page < all {
                    let next = format!(
                        "<{}/app/hook/deliveries?per_page={per_page}&cursor={}>; rel=\"next\"",
                        request.url.origin().ascii_serialization(),
                        start + per_page
                    );
                    answer = answer.insert_header("link", next.as_str());
                }
                answer
            }
            ("POST", rest) => {
                let id: u64 = rest.trim_start_matches('/').split('/').next().and_then(|i| i.parse().ok()).unwrap_or(0);
                if !book.repos.hook_deliveries.iter().any(|d| d["id"] == id) {
                    return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
                }
                book.repos.redelivered.push(id);
                ResponseTemplate::new(202).set_body_json(json!({}))
            }
            _ => {
                drop(book);
                shared.violation(format!("the fake does not answer {} {path}", request.method));
                ResponseTemplate::new(404)
            }
        }
    }
}

/// `GET /app` with the App's JWT: the App, as the description shapes it.
struct AppResponder(Arc<Shared>);

impl Respond for AppResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let shared = &self.0;
        let operation = match openapi::operation("GET", "/app") {
            Ok(operation) => operation,
            Err(problem) => {
                shared.violation(problem);
                return ResponseTemplate::new(404);
            }
        };
        if let Err(problem) = shared.verify_jwt(request) {
            shared.book.lock().unwrap().refused.push(problem.clone());
            return ResponseTemplate::new(401).set_body_json(json!({"message": problem}));
        }
        let owner = json!({
            "login": "acme", "id": 1, "node_id": "MDQ6VXNlcjE=", "avatar_url": "https://avatars.example.com/u/1",
            "gravatar_id": "", "url": "https://api.github.com/users/acme", "html_url": "https://github.com/acme",
            "followers_url": "https://api.github.com/users/acme/followers",
            "following_url": "https://api.github.com/users/acme/following{/other_user}",
            "gists_url": "https://api.github.com/users/acme/gists{/gist_id}",
            "starred_url": "https://api.github.com/users/acme/starred{/owner}{/repo}",
            "subscriptions_url": "https://api.github.com/users/acme/subscriptions",
            "organizations_url": "https://api.github.com/users/acme/orgs",
            "repos_url": "https://api.github.com/users/acme/repos",
            "events_url": "https://api.github.com/users/acme/events{/privacy}",
            "received_events_url": "https://api.github.com/users/acme/received_events",
            "type": "Organization", "site_admin": false,
        });
        let app = json!({
            "id": shared.app_id, "slug": APP_SLUG, "node_id": "MDExOkludGVncmF0aW9uMQ==", "owner": owner,
            "name": "Ferry (test)", "description": null, "external_url": "https://ferry.example.com",
            "html_url": format!("https://github.com/apps/{APP_SLUG}"),
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "permissions": {"contents": "read", "statuses": "write", "pull_requests": "write"},
            "events": ["push", "pull_request"],
        });
        if let Err(problem) = operation.check_response(200, &app) {
            shared.violation(format!("the fake itself: {problem}"));
        }
        ResponseTemplate::new(200).set_body_json(app)
    }
}

/// Anything else Ferry asks is a violation: the fake knows only minting.
struct Unknown(Arc<Shared>);

impl Respond for Unknown {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.violation(format!("unexpected request {} {}", request.method, request.url.path()));
        ResponseTemplate::new(404).set_body_json(json!({ "message": "Not Found" }))
    }
}

/// The repository endpoints Ferry's forge uses, answered from [`Repos`]:
/// every request needs a valid token: an installation token the fake
/// issued, a personal access token, or a user's OAuth token.
struct RepoResponder(Arc<Shared>);

impl Respond for RepoResponder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let shared = &self.0;
        let not_found = || ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
        let asked = Asked::new(request);
        match openapi::operation(&asked.method, &asked.path) {
            Ok(operation) => {
                if let Err(problem) = operation.check_request(asked.body.as_ref()) {
                    shared.violation(problem);
                }
            }
            Err(problem) => {
                shared.violation(problem);
                return not_found();
            }
        }
        let now = shared.now();
        let mut book = shared.book.lock().unwrap();
        // An installation token, a personal access token or a user's OAuth token.
        let valid = book.minted.iter().any(|m| m.token == asked.token && m.expires_at > now)
            || book.repos.pats.contains(&asked.token)
            || book.repos.oauth_tokens.contains_key(&asked.token);
        if !valid || book.repos.refuse_next > 0 {
            book.repos.refuse_next = book.repos.refuse_next.saturating_sub(1);
            return ResponseTemplate::new(401).set_body_json(json!({"message": "Bad credentials"}));
        }
        book.repos.calls.push((format!("{} {}", asked.method, asked.path), asked.token.clone()));
        let not_modified = book.repos.not_modified;
        let answer = reads(&mut book, &asked)
            .or_else(|| hooks(&mut book, &asked))
            .or_else(|| reports(&mut book, &asked))
            .or_else(|| comments(&mut book, &asked));
        let Some(answer) = answer else {
            drop(book);
            shared.violation(format!("the fake does not answer {} {}", asked.method, asked.path));
            return not_found();
        };
        // GitHub's rate-limit headers, per token: a 304 is free.
        let free = book.repos.not_modified != not_modified;
        let used = book.repos.units.entry(asked.token.clone()).or_default();
        *used += u64::from(!free);
        let (used, reset) = (*used, (now / 3600 + 1) * 3600);
        drop(book);
        answer
            .insert_header("x-ratelimit-limit", "5000")
            .insert_header("x-ratelimit-used", used.to_string().as_str())
            .insert_header("x-ratelimit-remaining", 5000u64.saturating_sub(used).to_string().as_str())
            .insert_header("x-ratelimit-reset", reset.to_string().as_str())
            .set_delay(*shared.answer_delay.lock().unwrap())
    }
}

/// One request to a repository endpoint, read once.
struct Asked<'a> {
    request: &'a Request,
    method: String,
    path: String,
    repo: String,
    query: HashMap<String, String>,
    page: usize,
    body: Option<Value>,
    token: String,
}

impl<'a> Asked<'a> {
    fn new(request: &'a Request) -> Self {
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let repo = format!("{}/{}", segments.get(1).unwrap_or(&""), segments.get(2).unwrap_or(&""));
        let query: HashMap<String, String> =
            request.url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let body = (!request.body.is_empty()).then(|| serde_json::from_slice(&request.body).ok()).flatten();
        let token = request
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        Self { request, method: request.method.to_string(), path, repo, query, page, body, token }
    }

    /// `/repos/{owner}/{repo}/…`, split at each `/`.
    fn parts(&self) -> Vec<&str> {
        let mut parts: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        parts.resize(parts.len().max(3), "");
        parts
    }
}

/// Files, commits, pull request files, listings and permissions.
fn reads(book: &mut Book, asked: &Asked) -> Option<ResponseTemplate> {
    let (repo, page, query) = (asked.repo.clone(), asked.page, &asked.query);
    let parts = asked.parts();
    let not_found = || ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
    Some(match (asked.method.as_str(), &parts[3..]) {
        ("GET", ["contents", rest @ ..]) => {
            let file = rest.join("/");
            let file = percent_decode(&file);
            match book.repos.files.get(&(repo, file.clone())) {
                Some(text) => ResponseTemplate::new(200).set_body_json(json!({
                    "type": "file", "encoding": "base64", "name": file.rsplit('/').next(), "path": file,
                    "content": STANDARD.encode(text.as_bytes()), "size": text.len(),
                })),
                None => not_found(),
            }
        }
        ("GET", ["pulls", number, "files"]) => {
            let number: u64 = number.parse().unwrap_or(0);
            let files = book.repos.pr_files.get(&(repo, number)).cloned().unwrap_or_default();
            let listed: Vec<Value> = files
                .iter()
                .skip((page - 1) * 100)
                .take(100)
                .map(|f| json!({"filename": f, "status": "modified"}))
                .collect();
            ResponseTemplate::new(200).set_body_json(listed)
        }
        ("GET", ["commits", reference]) => match book.repos.commits.get(&(repo, percent_decode(reference))) {
            Some(sha) => ResponseTemplate::new(200).set_body_string(sha.clone()),
            None => ResponseTemplate::new(422).set_body_json(json!({"message": "No commit found"})),
        },
        ("GET", ["pulls"]) | ("GET", ["releases"]) if book.repos.rate_limited.contains_key(&repo) => {
            let wait = book.repos.rate_limited[&repo].to_string();
            ResponseTemplate::new(403)
                .insert_header("retry-after", wait.as_str())
                .insert_header("x-ratelimit-remaining", "0")
                .set_body_json(json!({"message": "API rate limit exceeded"}))
        }
        ("GET", ["pulls"]) | ("GET", ["releases"]) if book.repos.fail_listings > 0 => {
            book.repos.fail_listings -= 1;
            ResponseTemplate::new(502).set_body_json(json!({"message": "Server Error"}))
        }
        ("GET", ["pulls"]) | ("GET", ["releases"]) => {
            let per_page: usize = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
            let all = if parts[3] == "pulls" { &book.repos.open_pulls } else { &book.repos.releases };
            let listed: Vec<Value> = all
                .get(&repo)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .collect();
            conditional(&mut book.repos, asked.request, &Value::from(listed))
        }
        ("GET", ["collaborators", login, "permission"]) => {
            match book.repos.permissions.get(&(repo, percent_decode(login))) {
                // `permission` folds maintain into write and triage into read.
                Some(role) => ResponseTemplate::new(200).set_body_json(json!({
                    "permission": match role.as_str() { "maintain" => "write", "triage" => "read", other => other },
                    "role_name": role,
                    "user": null,
                })),
                None => not_found(),
            }
        }
        _ => return None,
    })
}

/// Repository webhooks.
fn hooks(book: &mut Book, asked: &Asked) -> Option<ResponseTemplate> {
    let (repo, body) = (asked.repo.clone(), asked.body.clone());
    let parts = asked.parts();
    let not_found = || ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
    Some(match (asked.method.as_str(), &parts[3..]) {
        ("GET", ["hooks"]) => {
            ResponseTemplate::new(200).set_body_json(book.repos.hooks.get(&repo).cloned().unwrap_or_default())
        }
        ("POST", ["hooks"]) if book.repos.hooks_forbidden => not_found(),
        ("POST", ["hooks"]) => {
            let body = body.unwrap_or_default();
            let id = 500 + book.repos.hooks.values().map(Vec::len).sum::<usize>() as u64;
            let hook = json!({
                "id": id, "type": "Repository", "name": "web", "active": body["active"], "events": body["events"],
                "config": body["config"], "url": format!("https://api.github.com/repos/{repo}/hooks/{id}"),
            });
            book.repos.hooks.entry(repo).or_default().push(hook.clone());
            ResponseTemplate::new(201).set_body_json(hook)
        }
        ("DELETE", ["hooks", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let hooks = book.repos.hooks.entry(repo).or_default();
            let before = hooks.len();
            hooks.retain(|h| h["id"] != id);
            if hooks.len() < before { ResponseTemplate::new(204) } else { not_found() }
        }
        _ => return None,
    })
}

/// Check runs, statuses and deployments.
fn reports(book: &mut Book, asked: &Asked) -> Option<ResponseTemplate> {
    let (repo, body) = (asked.repo.clone(), asked.body.clone());
    let parts = asked.parts();
    Some(match (asked.method.as_str(), &parts[3..]) {
        ("POST", ["check-runs"]) if book.repos.no_checks_permission => {
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"}))
        }
        ("POST", ["check-runs"]) => {
            book.repos.check_runs.push((repo, body.unwrap_or_default()));
            ResponseTemplate::new(201).set_body_json(json!({"id": book.repos.check_runs.len()}))
        }
        ("POST", ["statuses", sha]) => {
            book.repos.statuses.push((repo, sha.to_string(), body.unwrap_or_default()));
            ResponseTemplate::new(201).set_body_json(json!({"id": book.repos.statuses.len()}))
        }
        ("POST", ["deployments"]) => {
            book.repos.deployments.push((repo, body.unwrap_or_default()));
            ResponseTemplate::new(201).set_body_json(json!({"id": book.repos.deployments.len()}))
        }
        ("POST", ["deployments", id, "statuses"]) => {
            book.repos.deployment_statuses.push((repo, id.parse().unwrap_or(0), body.unwrap_or_default()));
            ResponseTemplate::new(201).set_body_json(json!({"id": 1}))
        }
        _ => return None,
    })
}

/// Pull request comments.
fn comments(book: &mut Book, asked: &Asked) -> Option<ResponseTemplate> {
    let (repo, page, body, token) = (asked.repo.clone(), asked.page, asked.body.clone(), &asked.token);
    let parts = asked.parts();
    let not_found = || ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"}));
    Some(match (asked.method.as_str(), &parts[3..]) {
        ("GET", ["issues", number, "comments"]) => {
            let number: u64 = number.parse().unwrap_or(0);
            let listed: Vec<Value> = book
                .repos
                .comments
                .iter()
                .filter(|c| c.0 == repo && c.1 == number)
                .skip((page - 1) * 100)
                .take(100)
                .map(|c| {
                    let author = book.repos.comment_authors.get(&c.2).cloned().unwrap_or_else(app_login);
                    let kind = if author.ends_with("[bot]") { "Bot" } else { "User" };
                    json!({"id": c.2, "body": c.3, "user": {"login": author, "type": kind}})
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(listed)
        }
        ("POST", ["issues", number, "comments"]) => {
            let id = 1000 + book.repos.comments.len() as u64;
            let text = body.as_ref().and_then(|b| b["body"].as_str()).unwrap_or_default().to_owned();
            book.repos.comments.push((repo, number.parse().unwrap_or(0), id, text));
            // The comment is the credential's: a token's user, or the App's bot.
            let login = if book.repos.pats.contains(token) {
                book.repos.pat_logins.get(token).cloned().unwrap_or_else(|| PAT_OWNER.to_owned())
            } else {
                app_login()
            };
            book.repos.comment_authors.insert(id, login);
            ResponseTemplate::new(201).set_body_json(json!({"id": id}))
        }
        ("PATCH", ["issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let text = body.as_ref().and_then(|b| b["body"].as_str()).unwrap_or_default().to_owned();
            match book.repos.comments.iter_mut().find(|c| c.2 == id) {
                Some(comment) => {
                    comment.3 = text;
                    ResponseTemplate::new(200).set_body_json(json!({"id": id}))
                }
                None => not_found(),
            }
        }

        _ => return None,
    })
}

fn ferry_sha256(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
