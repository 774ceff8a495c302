//! GitHub's own OpenAPI description (`@octokit/openapi` from npm, installed
//! by `scripts/test`): every request Ferry makes to the fake GitHub is
//! checked against it (path, method, path parameters, body), and so is
//! every body the fake answers with, so the fake cannot drift from GitHub.

use std::sync::OnceLock;

use serde_json::Value;

/// The variable `scripts/test` sets to the api.github.com description that
/// the `@octokit/openapi` package ships.
pub const VARIABLE: &str = "FERRY_GITHUB_OPENAPI";

fn description() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::env::var(VARIABLE).unwrap_or_else(|_| {
            panic!("{VARIABLE} is not set: run ./scripts/test, which installs @octokit/openapi and sets it")
        });
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
    })
}

/// The schema `components.schemas.<name>` of the description.
pub fn component(name: &str) -> &'static Value {
    let schema = &description()["components"]["schemas"][name];
    assert!(schema.is_object(), "GitHub's API description has no schema {name}");
    schema
}

/// One operation of the description.
pub struct Operation {
    pub template: String,
    pub method: String,
    spec: &'static Value,
}

/// The operation `method path` (path below the API base, query ignored), or why there is none.
pub fn operation(method: &str, path: &str) -> Result<Operation, String> {
    let doc = description();
    let method = method.to_ascii_lowercase();
    let path = path.split('?').next().unwrap_or(path);
    let paths = doc["paths"].as_object().expect("the description has paths");
    for (template, item) in paths {
        let Some(spec) = item.get(&method) else { continue };
        if let Some(problem) = match_path(template, path, spec) {
            if problem.is_empty() {
                return Ok(Operation { template: template.clone(), method, spec });
            }
            return Err(format!("{method} {path} matches {template}, but {problem}"));
        }
    }
    Err(format!("GitHub's API has no operation {} {path}", method.to_uppercase()))
}

/// `None` when `path` does not fit `template`; `Some("")` when it does and
/// every path parameter has its type; `Some(problem)` otherwise.
fn match_path(template: &str, path: &str, spec: &'static Value) -> Option<String> {
    let want: Vec<&str> = template.split('/').collect();
    let mut got: Vec<&str> = path.split('/').collect();
    // A trailing `{path}` (the contents API) spans the segments left.
    let rest;
    if want.last() == Some(&"{path}") && got.len() > want.len() {
        rest = got[want.len() - 1..].join("/");
        got.truncate(want.len() - 1);
        got.push(&rest);
    }
    if want.len() != got.len() {
        return None;
    }
    let mut problems = Vec::new();
    for (w, g) in want.iter().zip(&got) {
        match w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) => {
                let integer = spec["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(resolve)
                    .any(|p| p["name"] == name && p["schema"]["type"] == "integer");
                if g.is_empty() || (integer && g.parse::<i64>().is_err()) {
                    problems.push(format!("path parameter {name} = {g:?} is not valid"));
                }
            }
            None if w == g => {}
            None => return None,
        }
    }
    Some(problems.join("; "))
}

/// Follows a `$ref` into the description's components.
fn resolve(value: &'static Value) -> Option<&'static Value> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => description().pointer(reference.trim_start_matches('#')),
        None => Some(value),
    }
}

impl Operation {
    /// Checks a request body: present when required, valid against the schema.
    pub fn check_request(&self, body: Option<&Value>) -> Result<(), String> {
        let request_body = match self.spec.get("requestBody") {
            Some(b) => resolve(b).ok_or("unresolvable requestBody")?,
            None => {
                return match body {
                    None => Ok(()),
                    Some(_) => Err(format!("{} {} takes no body", self.method, self.template)),
                };
            }
        };
        let Some(body) = body else {
            return match request_body["required"].as_bool() {
                Some(true) => Err(format!("{} {} requires a body", self.method, self.template)),
                _ => Ok(()),
            };
        };
        validate(&request_body["content"]["application/json"]["schema"], body)
            .map_err(|e| format!("request body of {} {}: {e}", self.method, self.template))
    }

    /// Checks a response body the fake sends with `status`.
    pub fn check_response(&self, status: u16, body: &Value) -> Result<(), String> {
        let response = self.spec["responses"]
            .get(status.to_string())
            .and_then(resolve)
            .ok_or_else(|| format!("{} {} documents no {status} answer", self.method, self.template))?;
        match response.pointer("/content/application~1json/schema") {
            Some(schema) => {
                validate(schema, body).map_err(|e| format!("{status} answer of {} {}: {e}", self.method, self.template))
            }
            None => Ok(()),
        }
    }
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it: `null` joins the
/// allowed types (and the enum), which a JSON Schema validator understands.
fn nullable_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([kind, "null"]));
                }
                if let Some(Value::Array(options)) = map.get_mut("enum") {
                    options.push(Value::Null);
                }
            }
            map.values_mut().for_each(nullable_to_json_schema);
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_json_schema),
        _ => {}
    }
}

/// Validates `instance` against an OpenAPI 3.0 schema fragment whose
/// `$ref`s point into the description's components.
fn validate(schema: &Value, instance: &Value) -> Result<(), String> {
    let mut root = schema.clone();
    let map = root.as_object_mut().ok_or("the schema is not an object")?;
    map.insert("components".into(), description()["components"].clone());
    nullable_to_json_schema(&mut root);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&root)
        .map_err(|e| format!("the schema does not compile: {e}"))?;
    let problems: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_knows_the_calls_ferry_makes() {
        let mint = operation("POST", "/app/installations/42/access_tokens").unwrap();
        assert_eq!(mint.template, "/app/installations/{installation_id}/access_tokens");
        mint.check_request(None).unwrap();
        mint.check_request(Some(&serde_json::json!({"repositories": ["api"], "permissions": {"contents": "read"}})))
            .unwrap();
        assert!(mint.check_request(Some(&serde_json::json!({"repositories": "api"}))).is_err());
        assert!(mint.check_request(Some(&serde_json::json!({"permissions": {"contents": "own"}}))).is_err());
        assert!(operation("POST", "/app/installations/abc/access_tokens").is_err());
        assert!(operation("POST", "/app/installation/42/access_tokens").is_err());
        mint.check_response(201, &serde_json::json!({"token": "ghs_x", "expires_at": "2026-01-01T00:00:00Z"})).unwrap();
        assert!(mint.check_response(201, &serde_json::json!({"token": "ghs_x"})).is_err());
        // `target_url` and `description` are `nullable` in the description.
        let status = operation("POST", "/repos/acme/api/statuses/abc").unwrap();
        status.check_request(Some(&serde_json::json!({"state": "success", "target_url": null}))).unwrap();
        assert!(status.check_request(Some(&serde_json::json!({"state": "done"}))).is_err());
    }
}
