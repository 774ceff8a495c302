//! Fakes for the poller: GitHub's and GitLab's commit APIs with real ETag
//! semantics (a matching `If-None-Match` is a 304, and on GitHub costs no
//! rate limit), a smart-HTTP Git server's ref advertisement, and an event
//! receiver that records what it gets and can be told to fail.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

#[derive(Default)]
struct Hosts {
    /// path ("acme/api" or "group/sub/project") and ref to SHA.
    heads: HashMap<(String, String), String>,
    /// A suffix mixed into ETags: changing it changes every ETag, not the SHA.
    etag_salt: String,
    /// Refs answered 404.
    missing: Vec<(String, String)>,
    /// Answer the next request with a secondary rate limit.
    rate_limit_next: bool,
    requests: usize,
    not_modified: usize,
}

/// GitHub, GitLab and a Git server in one fake.
pub struct GitHosts {
    server: MockServer,
    hosts: Arc<Mutex<Hosts>>,
    pub delay: Duration,
}

impl GitHosts {
    pub async fn start(delay: Duration) -> Self {
        let server = MockServer::start().await;
        let hosts: Arc<Mutex<Hosts>> = Arc::default();
        Mock::given(matchers::any()).respond_with(Host { hosts: hosts.clone(), delay }).mount(&server).await;
        Self { server, hosts, delay }
    }

    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Moves `path`'s `reference` to `sha`.
    pub fn set(&self, path: &str, reference: &str, sha: &str) {
        self.hosts.lock().unwrap().heads.insert((path.into(), reference.into()), sha.into());
    }

    /// Changes every ETag without changing a commit (another replica, say).
    pub fn touch_etags(&self) {
        self.hosts.lock().unwrap().etag_salt.push('x');
    }

    pub fn missing(&self, path: &str, reference: &str) {
        self.hosts.lock().unwrap().missing.push((path.into(), reference.into()));
    }

    pub fn rate_limit_next(&self) {
        self.hosts.lock().unwrap().rate_limit_next = true;
    }

    /// The credential headers (`Authorization`, `PRIVATE-TOKEN`) of every request received.
    pub async fn credentials_seen(&self) -> Vec<String> {
        let requests = self.server.received_requests().await.unwrap_or_default();
        requests
            .iter()
            .flat_map(|r| ["authorization", "private-token"].map(|name| r.headers.get(name).cloned()))
            .flatten()
            .filter_map(|value| value.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// How many requests reached the fake.
    pub async fn received(&self) -> usize {
        self.server.received_requests().await.unwrap_or_default().len()
    }

    /// Requests answered, and how many of them were 304s (free on GitHub).
    pub fn counts(&self) -> (usize, usize) {
        let hosts = self.hosts.lock().unwrap();
        (hosts.requests, hosts.not_modified)
    }
}

struct Host {
    hosts: Arc<Mutex<Hosts>>,
    delay: Duration,
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

impl Respond for Host {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut hosts = self.hosts.lock().unwrap();
        hosts.requests += 1;
        let path = request.url.path().to_owned();
        if std::mem::take(&mut hosts.rate_limit_next) {
            return ResponseTemplate::new(403)
                .insert_header("retry-after", "60")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit"}))
                .set_delay(self.delay);
        }
        let decode = |s: &str| s.replace("%2F", "/").replace("%2f", "/");
        // GitHub: /repos/{owner}/{repo}/commits/{ref}; GitLab: /api/v4/projects/{path}/repository/commits/{ref};
        // Git: /git/{path}/info/refs.
        let (kind, repo, reference) = if let Some(rest) = path.strip_prefix("/repos/") {
            let parts: Vec<&str> = rest.splitn(4, '/').collect();
            ("github", format!("{}/{}", parts[0], parts[1]), decode(parts.get(3).copied().unwrap_or_default()))
        } else if let Some(rest) = path.strip_prefix("/api/v4/projects/") {
            let (project, tail) = rest.split_once("/repository/commits/").unwrap_or((rest, ""));
            ("gitlab", decode(project), decode(tail))
        } else if let Some(rest) = path.strip_prefix("/git/") {
            ("git", rest.trim_end_matches("/info/refs").to_owned(), String::new())
        } else {
            return ResponseTemplate::new(404);
        };
        if kind == "git" {
            let mut body = pkt("# service=git-upload-pack\n") + "0000";
            let mut first = true;
            for ((path, reference), sha) in &hosts.heads {
                if *path == repo {
                    let caps = if first { "\0multi_ack side-band-64k" } else { "" };
                    body += &pkt(&format!("{sha} refs/heads/{reference}{caps}\n"));
                    first = false;
                }
            }
            body += "0000";
            return ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-git-upload-pack-advertisement")
                .set_body_string(body)
                .set_delay(self.delay);
        }
        if hosts.missing.contains(&(repo.clone(), reference.clone())) {
            return ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})).set_delay(self.delay);
        }
        let Some(sha) = hosts.heads.get(&(repo.clone(), reference.clone())).cloned() else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"message": "No commit found"}))
                .set_delay(self.delay);
        };
        let etag = format!("W/\"{sha}{}\"", hosts.etag_salt);
        let matches = request.headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str());
        if matches {
            hosts.not_modified += 1;
            return ResponseTemplate::new(304).insert_header("etag", etag.as_str()).set_delay(self.delay);
        }
        let body: Value = match kind {
            "github" => {
                json!({"sha": sha, "commit": {"message": "a change", "author": {"name": "octocat"}}, "html_url": format!("https://github.com/{repo}/commit/{sha}")})
            }
            _ => {
                json!({"id": sha, "short_id": &sha[..8], "title": "a change", "web_url": format!("https://gitlab.example.com/{repo}/-/commit/{sha}")})
            }
        };
        ResponseTemplate::new(200).insert_header("etag", etag.as_str()).set_body_json(body).set_delay(self.delay)
    }
}

/// One event as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Inbox {
    failures: usize,
    attempts: usize,
    accepted: Vec<Received>,
}

/// Receives events; can be told to fail the next few.
pub struct Receiver {
    server: MockServer,
    inbox: Arc<Mutex<Inbox>>,
}

struct Accept(Arc<Mutex<Inbox>>);

impl Respond for Accept {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut inbox = self.0.lock().unwrap();
        inbox.attempts += 1;
        if inbox.failures > 0 {
            inbox.failures -= 1;
            return ResponseTemplate::new(503);
        }
        let headers = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        inbox.accepted.push(Received { headers, body: request.body.clone() });
        ResponseTemplate::new(202)
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let inbox: Arc<Mutex<Inbox>> = Arc::default();
        Mock::given(matchers::method("POST")).respond_with(Accept(inbox.clone())).mount(&server).await;
        Self { server, inbox }
    }

    pub fn url(&self) -> String {
        format!("{}/events", self.server.uri())
    }

    pub fn fail_next(&self, n: usize) {
        self.inbox.lock().unwrap().failures = n;
    }

    /// Every event accepted (2xx), oldest first.
    pub fn accepted(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().accepted.clone()
    }

    /// Every delivery attempt, failed ones included.
    pub fn attempts(&self) -> usize {
        self.inbox.lock().unwrap().attempts
    }
}
