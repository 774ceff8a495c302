//! Fakes of the four other hosts' commit-status and file endpoints, each
//! built from that host's API documentation (linked on each): the path
//! shape, the credential's form, required fields, allowed values and
//! limits. What the documentation does not allow is recorded as a violation
//! and refused. For the poller, each also has branch heads: GitLab's
//! commits API, and for the others a Git server's ref advertisement.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers};

pub use ferry::report::Provider;

/// What a fake saw.
#[derive(Default)]
struct Book {
    accepted: Vec<Value>,
    violations: Vec<String>,
    /// Answer this status to the next request (an outage, say).
    fail_next: Option<u16>,
    /// `(sha, path)` to the file's text.
    files: std::collections::HashMap<(String, String), String>,
    /// Branch to SHA.
    heads: std::collections::HashMap<String, String>,
    /// Every file read, as `(sha, path)`.
    reads: Vec<(String, String)>,
}

pub struct ProviderFake {
    server: MockServer,
    book: Arc<Mutex<Book>>,
    pub provider: Provider,
    pub token: String,
}

impl ProviderFake {
    pub async fn start(provider: Provider, token: &str) -> Self {
        let server = MockServer::start().await;
        let book = Arc::new(Mutex::new(Book::default()));
        let responder = Host { provider, token: token.to_owned(), book: book.clone() };
        Mock::given(matchers::any()).respond_with(responder).mount(&server).await;
        Self { server, book, provider, token: token.to_owned() }
    }

    pub fn url(&self) -> url::Url {
        url::Url::parse(&self.server.uri()).expect("the fake's URI")
    }

    /// Every status the fake accepted, as sent.
    pub fn accepted(&self) -> Vec<Value> {
        self.book.lock().unwrap().accepted.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.book.lock().unwrap().violations.clone()
    }

    pub fn fail_next(&self, status: u16) {
        self.book.lock().unwrap().fail_next = Some(status);
    }

    /// Puts a file at a commit.
    pub fn put_file(&self, sha: &str, path: &str, text: &str) {
        self.book.lock().unwrap().files.insert((sha.into(), path.into()), text.into());
    }

    /// Moves a branch to `sha`.
    pub fn set_head(&self, branch: &str, sha: &str) {
        self.book.lock().unwrap().heads.insert(branch.into(), sha.into());
    }

    /// Every file read, as `(sha, path)`.
    pub fn reads(&self) -> Vec<(String, String)> {
        self.book.lock().unwrap().reads.clone()
    }
}

struct Host {
    provider: Provider,
    token: String,
    book: Arc<Mutex<Book>>,
}

/// What one request must be, per the host's documentation.
struct Contract {
    path: &'static str,
    credential: String,
    states: &'static [&'static str],
    required: &'static [&'static str],
    /// `(field, longest)`.
    limits: &'static [(&'static str, usize)],
    created: u16,
}

fn segments_of(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

impl Host {
    fn contract(&self) -> Contract {
        use base64::Engine;
        match self.provider {
            // https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
            Provider::Gitlab => Contract {
                path: "api/v4/projects/{id}/statuses/{sha}",
                credential: self.token.clone(),
                states: &["pending", "running", "success", "failed", "canceled", "skipped"],
                required: &["state"],
                limits: &[("description", 255), ("name", 255)],
                created: 201,
            },
            // https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/
            Provider::Bitbucket => Contract {
                path: "2.0/repositories/{workspace}/{repo_slug}/commit/{sha}/statuses/build",
                // An app password (`<user>:<app-password>`) is HTTP Basic.
                credential: if self.token.contains(':') {
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&self.token))
                } else {
                    format!("Bearer {}", self.token)
                },
                states: &["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"],
                required: &["key", "state", "url"],
                limits: &[("key", 40), ("name", 255)],
                created: 201,
            },
            // https://learn.microsoft.com/en-us/rest/api/azure/devops/git/statuses/create?view=azure-devops-rest-7.1
            Provider::AzureDevops => Contract {
                path: "{organization}/{project}/_apis/git/repositories/{repository}/commits/{sha}/statuses",
                credential: format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(":{}", self.token))
                ),
                states: &["notSet", "pending", "succeeded", "failed", "error", "notApplicable"],
                required: &["state", "context"],
                limits: &[],
                created: 201,
            },
            // https://gitea.com/api/swagger#/repository/repoCreateStatus
            Provider::Gitea => Contract {
                path: "api/v1/repos/{owner}/{repo}/statuses/{sha}",
                credential: format!("token {}", self.token),
                states: &["pending", "success", "error", "failure", "warning"],
                required: &["state"],
                limits: &[],
                created: 201,
            },
        }
    }

    /// The documented path, `api-version` and credential of any request.
    fn common(&self, request: &Request, path: &str, credential: &str) -> Result<Vec<String>, (u16, String)> {
        let want = segments_of(path);
        let got = segments_of(request.url.path());
        // `{path}` at the end takes the rest: a file path has segments.
        let rest = want.last() == Some(&"{path}");
        let fits = (want.len() == got.len() || (rest && got.len() >= want.len()))
            && want.iter().zip(&got).all(|(w, g)| {
                if *w == "{sha}" {
                    g.len() == 40 && g.bytes().all(|b| b.is_ascii_hexdigit())
                } else if w.starts_with('{') {
                    !g.is_empty()
                } else {
                    w == g
                }
            });
        if !fits {
            return Err((404, format!("{} is not {path}", request.url.path())));
        }
        if self.provider == Provider::Gitlab && got[3].contains('/') {
            return Err((404, "the project path must be URL-encoded".into()));
        }
        if self.provider == Provider::AzureDevops
            && !request.url.query_pairs().any(|(k, v)| k == "api-version" && v == "7.1")
        {
            return Err((400, "api-version=7.1 is required".into()));
        }
        let header = if self.provider == Provider::Gitlab { "private-token" } else { "authorization" };
        let sent = request.headers.get(header).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if sent != credential {
            return Err((401, "the credential is missing or wrong".into()));
        }
        Ok(got.iter().map(|s| (*s).to_owned()).collect())
    }

    fn check(&self, request: &Request, contract: &Contract) -> Result<Value, (u16, String)> {
        if request.method.as_str() != "POST" {
            return Err((405, format!("{} is not the documented method", request.method)));
        }
        self.common(request, contract.path, &contract.credential)?;
        let body: Value =
            serde_json::from_slice(&request.body).map_err(|_| (400, "the body is not JSON".to_owned()))?;
        for field in contract.required {
            if body.get(*field).is_none_or(Value::is_null) {
                return Err((400, format!("{field} is required")));
            }
        }
        let state = body["state"].as_str().unwrap_or_default();
        if !contract.states.contains(&state) {
            return Err((400, format!("state {state:?} is not one of {:?}", contract.states)));
        }
        for (field, longest) in contract.limits {
            if body[*field].as_str().is_some_and(|v| v.chars().count() > *longest) {
                return Err((400, format!("{field} is longer than {longest}")));
            }
        }
        if self.provider == Provider::AzureDevops && body["context"]["name"].as_str().is_none_or(str::is_empty) {
            return Err((400, "context.name is required".into()));
        }
        for url_field in ["url", "target_url", "targetUrl"] {
            if let Some(url) = body.get(url_field).and_then(Value::as_str)
                && url::Url::parse(url).is_err()
            {
                return Err((400, format!("{url_field} is not an absolute URL")));
            }
        }
        Ok(body)
    }
}

impl Host {
    /// The documented file read: `(sha, path)`, or why the request is not one.
    fn file_read(&self, request: &Request, credential: &str) -> Result<(String, String), (u16, String)> {
        let query = |name: &str| request.url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        let decode = |s: &str| s.replace("%2F", "/").replace("%2f", "/");
        match self.provider {
            // https://docs.gitlab.com/api/repository_files/#get-raw-file-from-repository
            Provider::Gitlab => {
                let got = self.common(request, "api/v4/projects/{id}/repository/files/{file_path}/raw", credential)?;
                let sha = query("ref").ok_or((400, "ref is required".to_owned()))?;
                Ok((sha, decode(&got[6])))
            }
            // https://developer.atlassian.com/cloud/bitbucket/rest/api-group-source/
            Provider::Bitbucket => {
                let got =
                    self.common(request, "2.0/repositories/{workspace}/{repo_slug}/src/{sha}/{path}", credential)?;
                Ok((got[5].clone(), got[6..].join("/")))
            }
            // https://learn.microsoft.com/en-us/rest/api/azure/devops/git/items/get?view=azure-devops-rest-7.1
            Provider::AzureDevops => {
                self.common(request, "{organization}/{project}/_apis/git/repositories/{repository}/items", credential)?;
                let path = query("path").ok_or((400, "path is required".to_owned()))?;
                let sha = query("versionDescriptor.version").unwrap_or_default();
                if query("versionDescriptor.versionType").as_deref() != Some("commit") {
                    return Err((400, "versionDescriptor.versionType must say commit for a SHA".into()));
                }
                if query("includeContent").as_deref() != Some("true") {
                    return Err((400, "without includeContent=true the JSON has no content".into()));
                }
                Ok((sha, path.trim_start_matches('/').to_owned()))
            }
            // https://gitea.com/api/swagger#/repository/repoGetRawFile
            Provider::Gitea => {
                let got = self.common(request, "api/v1/repos/{owner}/{repo}/raw/{path}", credential)?;
                let sha = query("ref").ok_or((400, "ref is required".to_owned()))?;
                Ok((sha, got[6..].join("/")))
            }
        }
    }

    /// Whether Git's Basic credential is one this host documents for its
    /// token: Bitbucket's app password as `<user>:<app-password>`, its
    /// access tokens as `x-token-auth`; Azure DevOps and Gitea take the
    /// token as the password beside any user.
    fn git_credential_fits(&self, request: &Request) -> bool {
        use base64::Engine;
        let sent = request.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(encoded) = sent.strip_prefix("Basic ") else { return false };
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default();
        let decoded = String::from_utf8(decoded).unwrap_or_default();
        let Some((user, password)) = decoded.split_once(':') else { return false };
        match self.provider {
            Provider::Bitbucket if self.token.contains(':') => decoded == self.token,
            Provider::Bitbucket => user == "x-token-auth" && password == self.token,
            _ => !user.is_empty() && password == self.token,
        }
    }

    /// A GET: a file, GitLab's commit of a branch, or a ref advertisement.
    fn read(&self, request: &Request, credential: &str, book: &mut Book) -> ResponseTemplate {
        let path = request.url.path();
        if path.ends_with("/info/refs") {
            if !self.git_credential_fits(request) {
                return ResponseTemplate::new(401).insert_header("www-authenticate", "Basic realm=\"git\"");
            }
            let pkt = |line: &str| format!("{:04x}{line}", line.len() + 4);
            let mut body = pkt("# service=git-upload-pack\n") + "0000";
            for (i, (branch, sha)) in book.heads.iter().enumerate() {
                let caps = if i == 0 { "\0multi_ack side-band-64k" } else { "" };
                body += &pkt(&format!("{sha} refs/heads/{branch}{caps}\n"));
            }
            return ResponseTemplate::new(200).set_body_string(body + "0000");
        }
        if self.provider == Provider::Gitlab && path.contains("/repository/commits/") {
            if request.headers.get("private-token").and_then(|v| v.to_str().ok()) != Some(self.token.as_str()) {
                return ResponseTemplate::new(401).set_body_json(json!({ "message": "401 Unauthorized" }));
            }
            let branch = path.rsplit('/').next().unwrap_or_default();
            return match book.heads.get(branch) {
                Some(sha) => ResponseTemplate::new(200).set_body_json(json!({ "id": sha, "title": "a change" })),
                None => ResponseTemplate::new(404).set_body_json(json!({ "message": "404 Commit Not Found" })),
            };
        }
        match self.file_read(request, credential) {
            Ok((sha, file)) => {
                book.reads.push((sha.clone(), file.clone()));
                match (book.files.get(&(sha, file.clone())), self.provider) {
                    (Some(text), Provider::AzureDevops) => ResponseTemplate::new(200).set_body_json(
                        json!({ "objectId": "0".repeat(40), "path": format!("/{file}"), "content": text }),
                    ),
                    (Some(text), _) => ResponseTemplate::new(200).set_body_string(text.clone()),
                    (None, _) => ResponseTemplate::new(404).set_body_json(json!({ "message": "404 File Not Found" })),
                }
            }
            Err((401, problem)) => ResponseTemplate::new(401).set_body_json(json!({ "message": problem })),
            Err((status, problem)) => {
                book.violations.push(problem.clone());
                ResponseTemplate::new(status).set_body_json(json!({ "message": problem }))
            }
        }
    }
}

impl Respond for Host {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let contract = self.contract();
        let mut book = self.book.lock().unwrap();
        if let Some(status) = book.fail_next.take() {
            return ResponseTemplate::new(status).set_body_json(json!({"message": "Service Unavailable"}));
        }
        if request.method.as_str() == "GET" {
            return self.read(request, &contract.credential, &mut book);
        }
        match self.check(request, &contract) {
            Ok(body) => {
                // GitLab refuses to move a status to the state it has.
                if self.provider == Provider::Gitlab
                    && book
                        .accepted
                        .iter()
                        .rev()
                        .find(|b| b["name"] == body["name"])
                        .is_some_and(|previous| previous["state"] == body["state"])
                {
                    let message =
                        format!("Cannot transition status via :enqueue from :{}", body["state"].as_str().unwrap_or(""));
                    return ResponseTemplate::new(400).set_body_json(json!({ "message": message }));
                }
                book.accepted.push(body.clone());
                ResponseTemplate::new(contract.created).set_body_json(body)
            }
            Err((401, problem)) => ResponseTemplate::new(401).set_body_json(json!({ "message": problem })),
            Err((status, problem)) => {
                book.violations.push(problem.clone());
                ResponseTemplate::new(status).set_body_json(json!({ "message": problem }))
            }
        }
    }
}
