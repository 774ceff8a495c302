//! `ferry repos`, `ferry track`, `ferry untrack`: the management API's use
//! cases, run directly against the configured stores, or (`--url`) asked of
//! a running Ferry with `FERRY_ADMIN_TOKEN`.

use std::io::BufRead;

use anyhow::{Context as _, bail};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use ferry::domain::{RepoMode, RepoName};
use ferry::usecase::track;

pub async fn repos(url: Option<&str>) -> anyhow::Result<()> {
    let listed = match url {
        Some(url) => remote(reqwest::Method::GET, &format!("{url}/api/v0/repositories"), None).await?,
        None => {
            let context = connect().await?;
            json!({ "repositories": track::list(context.state.as_ref()).await? })
        }
    };
    println!("{}", serde_json::to_string_pretty(&listed)?);
    Ok(())
}

pub async fn track(repository: &str, token_mode: bool, url: Option<&str>) -> anyhow::Result<()> {
    let repo = RepoName::parse(repository.to_owned())?;
    let token = if token_mode { Some(read_token()?) } else { None };
    let outcome = match url {
        Some(url) => {
            let mut body = json!({ "mode": if token_mode { "token" } else { "app" } });
            if let Some(token) = &token {
                body["token"] = token.expose_secret().into();
            }
            remote(reqwest::Method::POST, &format!("{url}/api/v0/repositories/{repo}"), Some(body)).await?
        }
        None => {
            let context = connect().await?;
            let secrets = context.webhook_secrets.get().await?;
            let secret = secrets.first().map(|s| SecretString::from(s.expose().to_owned()));
            let mode = if token_mode { RepoMode::Token } else { RepoMode::App };
            json!(track::track(track::Ports::of(&context, secret.as_ref()), &repo, mode, token).await?)
        }
    };
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(())
}

pub async fn untrack(repository: &str, url: Option<&str>) -> anyhow::Result<()> {
    let repo = RepoName::parse(repository.to_owned())?;
    match url {
        Some(url) => {
            remote(reqwest::Method::DELETE, &format!("{url}/api/v0/repositories/{repo}"), None).await?;
        }
        None => {
            let context = connect().await?;
            track::untrack(track::Ports::of(&context, None), &repo).await?;
        }
    }
    println!("untracked {repo}");
    Ok(())
}

async fn connect() -> anyhow::Result<ferry::Context> {
    ferry::Context::connect(ferry::Config::from_env()?).await.context("cannot start")
}

/// The token on standard input's first line.
fn read_token() -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the token from standard input")?;
    let token = line.trim();
    if token.is_empty() {
        bail!("--token reads the repository's token from standard input: none was given");
    }
    Ok(SecretString::from(token.to_owned()))
}

async fn remote(method: reqwest::Method, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let admin = std::env::var("FERRY_ADMIN_TOKEN").context("--url needs FERRY_ADMIN_TOKEN")?;
    let client = ferry::net::client_builder().build().context("cannot build the HTTP client")?;
    let mut request = client.request(method, url).bearer_auth(admin);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {}", reply["error"].as_str().unwrap_or("no reason given"));
    }
    Ok(reply)
}
