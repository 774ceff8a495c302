//! Tekton's CloudEvents (README.md, "Results in seconds"): which run an
//! event names, and whether a run object is one of Ferry's. An event is a
//! hint to look at the cluster now; what is reported is what the cluster
//! says, so a forged or replayed event can only make Ferry look earlier.

use serde_json::Value;

/// A run an event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// `PipelineRun` or `TaskRun`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// A run ended: look at it.
    Ended(RunRef),
    /// Started, running, or another kind's event: nothing to report yet.
    NotAnEnd(String),
}

/// The run a Tekton CloudEvent names, from its `ce-type`
/// (`dev.tekton.event.<pipelinerun|taskrun>.<successful|failed|…>.v1`) and
/// its body (the run under `pipelineRun` or `taskRun`).
pub fn hint(ce_type: &str, body: &[u8]) -> Result<Hint, String> {
    let Some(rest) = ce_type.strip_prefix("dev.tekton.event.") else {
        return Err(format!("{ce_type:?} is not a Tekton event type"));
    };
    let (kind, field) = match rest.split('.').next() {
        Some("pipelinerun") => ("PipelineRun", "pipelineRun"),
        Some("taskrun") => ("TaskRun", "taskRun"),
        _ => return Ok(Hint::NotAnEnd(format!("{ce_type} is not about a run"))),
    };
    if !matches!(rest.split('.').nth(1), Some("successful" | "failed")) {
        return Ok(Hint::NotAnEnd(format!("{ce_type} does not end a run")));
    }
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let metadata = &body[field]["metadata"];
    let text = |key: &str| metadata[key].as_str().filter(|v| dns_name(v)).map(str::to_owned);
    match (text("namespace"), text("name")) {
        (Some(namespace), Some(name)) => Ok(Hint::Ended(RunRef { kind, namespace, name })),
        _ => Err(format!("the body names no {field} (metadata.namespace and metadata.name)")),
    }
}

/// A Kubernetes object name (DNS-1123 subdomain): anything else names no run.
fn dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(field: &str) -> Vec<u8> {
        json!({ field: { "metadata": { "name": "ferry-api-1", "namespace": "ci" } } }).to_string().into_bytes()
    }

    #[test]
    fn an_end_names_its_run_and_anything_else_is_not_an_end() {
        let ended =
            |kind: &'static str| Ok(Hint::Ended(RunRef { kind, namespace: "ci".into(), name: "ferry-api-1".into() }));
        assert_eq!(hint("dev.tekton.event.pipelinerun.successful.v1", &body("pipelineRun")), ended("PipelineRun"));
        assert_eq!(hint("dev.tekton.event.pipelinerun.failed.v1", &body("pipelineRun")), ended("PipelineRun"));
        assert_eq!(hint("dev.tekton.event.taskrun.failed.v1", &body("taskRun")), ended("TaskRun"));
        for not_an_end in [
            "dev.tekton.event.pipelinerun.started.v1",
            "dev.tekton.event.pipelinerun.running.v1",
            "dev.tekton.event.taskrun.unknown.v1",
            "dev.tekton.event.customrun.successful.v1",
        ] {
            assert!(matches!(hint(not_an_end, b"not even json"), Ok(Hint::NotAnEnd(_))), "{not_an_end}");
        }
        for broken in [
            ("dev.tekton.event.pipelinerun.successful.v1", body("taskRun")),
            ("dev.tekton.event.pipelinerun.successful.v1", b"{".to_vec()),
            (
                "dev.tekton.event.pipelinerun.successful.v1",
                json!({"pipelineRun": {"metadata": {"name": "x"}}}).to_string().into_bytes(),
            ),
            (
                "dev.tekton.event.pipelinerun.successful.v1",
                json!({"pipelineRun": {"metadata": {"name": "x".repeat(300), "namespace": "ci"}}})
                    .to_string()
                    .into_bytes(),
            ),
            ("com.example.other", body("pipelineRun")),
            (
                "dev.tekton.event.pipelinerun.failed.v1",
                json!({"pipelineRun": {"metadata": {"name": "../x", "namespace": "ci"}}}).to_string().into_bytes(),
            ),
        ] {
            assert!(hint(broken.0, &broken.1).is_err(), "{broken:?}");
        }
    }
}
