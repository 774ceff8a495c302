//! `.ferry.toml`: the units a repository asks for (README.md, "Units").
//!
//! The whole file is a template first, as in the Kube Git Deploy seed, so
//! a condition can wrap a unit (`{% if git.branch == "main" %}…{% endif %}`)
//! and any value can use the context; the rendered text is then TOML. Every
//! problem names its line, and line numbers survive rendering: block tags
//! keep their line breaks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{TemplateContext, line_at};
use crate::domain::UnitName;

/// The file's name at the repository root.
pub const FILE_NAME: &str = ".ferry.toml";

/// A problem with a units file, said the way a commit status can show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct FileError {
    pub line: Option<usize>,
    pub problem: String,
}

/// What triggers a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum On {
    Push,
    PullRequest,
    Release,
}

/// Tekton's two kinds of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Pipeline,
    Task,
}

/// `[unit.pipeline]` or `[unit.task]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    #[serde(skip, default = "pipeline")]
    pub kind: RunKind,
    #[serde(default)]
    pub namespace: Option<String>,
    /// `pipelineRef` / `taskRef` name. Without it a unit with docker or
    /// helm actions gets a generated pipeline.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub service_account: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

fn pipeline() -> RunKind {
    RunKind::Pipeline
}

/// `[[unit.docker]]`: build `directory` and push `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Docker {
    pub directory: String,
    pub tag: String,
    #[serde(default)]
    pub dockerfile: Option<String>,
}

/// `[[unit.helm]]`: `helm upgrade --install` the chart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Helm {
    pub chart: String,
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

/// `[unit.preview]`: one environment per pull request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    pub image: String,
    pub port: u16,
    pub host: String,
}

/// One unit, as the file says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub name: UnitName,
    pub on: Vec<On>,
    /// Branch globs for pushes; empty means every branch.
    pub branches: Vec<String>,
    /// Changed-path globs; empty means any change.
    pub paths: Vec<String>,
    /// Run for draft pull requests too.
    pub drafts: bool,
    /// A pull request with one of these labels launches nothing.
    pub skip_labels: Vec<String>,
    pub run: Option<RunSpec>,
    pub docker: Vec<Docker>,
    pub helm: Vec<Helm>,
    pub preview: Option<Preview>,
    /// At most this many of its runs at once; more wait, in order.
    pub max_running: Option<u32>,
    /// Finished runs beyond the newest this many are deleted.
    pub keep_runs: Option<u32>,
}

impl Unit {
    /// Unit `name`, on `on`, with nothing to run yet and no filter: every
    /// branch, path and pull request.
    pub fn new(name: UnitName, on: Vec<On>) -> Self {
        Self {
            name,
            on,
            branches: Vec::new(),
            paths: Vec::new(),
            drafts: false,
            skip_labels: Vec::new(),
            run: None,
            docker: Vec::new(),
            helm: Vec::new(),
            preview: None,
            max_running: None,
            keep_runs: None,
        }
    }

    /// Whether the unit has anything to run for `on` (a preview counts for pull requests).
    pub fn runs_something(&self) -> bool {
        self.run.as_ref().is_some_and(|r| r.reference.is_some()) || !self.docker.is_empty() || !self.helm.is_empty()
    }
}

/// The label that skips a pull request unless a unit names others.
pub const SKIP_LABEL: &str = "ferry/skip";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitToml {
    #[serde(default)]
    on: Option<Vec<On>>,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    drafts: bool,
    #[serde(default)]
    skip_labels: Option<Vec<String>>,
    #[serde(default)]
    pipeline: Option<RunSpec>,
    #[serde(default)]
    task: Option<RunSpec>,
    #[serde(default)]
    docker: Vec<Docker>,
    #[serde(default)]
    helm: Vec<Helm>,
    #[serde(default)]
    preview: Option<Preview>,
    #[serde(default)]
    max_running: Option<u32>,
    #[serde(default)]
    keep_runs: Option<u32>,
}

/// Renders `source` with `context`, then reads its units, in file order
/// of their names (sorted: a table's keys have no order in TOML).
/// The template renders in a box (see [`super::template`]): a hostile
/// file ends in an error naming the limit it hit.
pub fn parse(source: &str, context: &TemplateContext) -> Result<Vec<Unit>, FileError> {
    let rendered = super::template::render(source, context)?;
    read(&rendered)
}

/// [`parse`] on a blocking thread, answered within
/// [`RENDER_TIME_LIMIT`](super::template::RENDER_TIME_LIMIT): rendering is
/// CPU work that must not hold up the async runtime. A render still going
/// at the limit is answered with an error but cannot be stopped from here:
/// it stops by itself at its next filter or output past the same deadline,
/// or when its fuel runs out, whichever comes first.
pub async fn parse_bounded(source: String, context: TemplateContext) -> Result<Vec<Unit>, FileError> {
    parse_within(source, context, super::template::RENDER_TIME_LIMIT).await
}

async fn parse_within(source: String, context: TemplateContext, limit: Duration) -> Result<Vec<Unit>, FileError> {
    within(limit, move || parse(&source, &context)).await
}

/// Runs a units file's `parse` on a blocking thread, answered within `limit`
/// (see [`parse_bounded`]); shared by every units file format.
pub(super) async fn within(
    limit: Duration,
    parse: impl FnOnce() -> Result<Vec<Unit>, FileError> + Send + 'static,
) -> Result<Vec<Unit>, FileError> {
    let work = tokio::task::spawn_blocking(parse);
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(result)) => result,
        Ok(Err(failed)) => Err(FileError { line: None, problem: format!("template: the render failed: {failed}") }),
        Err(_) => Err(FileError {
            line: None,
            problem: format!("template: rendering took longer than {} s, the limit", limit.as_secs()),
        }),
    }
}

fn read(text: &str) -> Result<Vec<Unit>, FileError> {
    // Keys with their spans: each unit's problems name the line it starts on.
    let table: BTreeMap<toml::Spanned<String>, toml::Value> = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let line_of = |key: &toml::Spanned<String>| Some(line_at(text, key.span().start));
    // The seed's own layout (`[api]` then `[[docker]]`) is not valid for a
    // unit in TOML: say how to write it before anything else.
    let actions = ["docker", "helm", "pipeline", "task", "preview"];
    if let Some(key) = table.keys().find(|key| actions.contains(&key.get_ref().as_str())) {
        let name = key.get_ref();
        return Err(FileError {
            line: line_of(key),
            problem: format!("[{name}] belongs to a unit: write [<unit>.{name}] (or [[<unit>.{name}]])"),
        });
    }
    let mut units = Vec::new();
    for (key, value) in table {
        let at = line_of(&key);
        let name = key.into_inner();
        let unit_name = UnitName::parse(name.clone())
            .map_err(|e| FileError { line: at, problem: format!("unit [{name}]: {}", e.problem) })?;
        if !value.is_table() {
            return Err(FileError {
                line: at,
                problem: format!("`{name}` is not a unit: every top-level entry is a [unit] table"),
            });
        }
        let spec: UnitToml = value
            .try_into()
            .map_err(|e: toml::de::Error| FileError { line: at, problem: format!("unit [{name}]: {}", e.message()) })?;
        units.push(
            unit(unit_name, spec)
                .map_err(|problem| FileError { line: at, problem: format!("unit [{name}]: {problem}") })?,
        );
    }
    Ok(units)
}

fn unit(name: UnitName, spec: UnitToml) -> Result<Unit, String> {
    let run = match (spec.pipeline, spec.task) {
        (Some(_), Some(_)) => return Err("has both [pipeline] and [task]; a unit runs one".into()),
        (Some(pipeline), None) => Some(pipeline),
        (None, Some(mut task)) => {
            task.kind = RunKind::Task;
            if task.reference.is_none() {
                return Err("[task] needs `ref`, the Task to run".into());
            }
            Some(task)
        }
        (None, None) => None,
    };
    for glob in spec.branches.iter().chain(&spec.paths) {
        globset::Glob::new(glob).map_err(|e| format!("`{glob}` is not a glob: {}", e.kind()))?;
    }
    let on = spec.on.unwrap_or_else(|| vec![On::Push]);
    let unit = Unit {
        name,
        on,
        branches: spec.branches,
        paths: spec.paths,
        drafts: spec.drafts,
        skip_labels: spec.skip_labels.unwrap_or_else(|| vec![SKIP_LABEL.to_owned()]),
        run,
        docker: spec.docker,
        helm: spec.helm,
        preview: spec.preview,
        max_running: spec.max_running,
        keep_runs: spec.keep_runs,
    };
    if unit.max_running == Some(0) || unit.keep_runs == Some(0) {
        return Err("max_running and keep_runs must be at least 1".into());
    }
    if !unit.runs_something() && unit.preview.is_none() {
        return Err(
            "has nothing to run: give [pipeline] or [task] a `ref`, or docker or helm actions, or a [preview]".into()
        );
    }
    Ok(unit)
}

fn toml_error(text: &str, error: &toml::de::Error) -> FileError {
    let line = error.span().map(|span| line_at(text, span.start));
    FileError { line, problem: format!("TOML: {}", error.message().trim_end()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(branch: &str) -> TemplateContext {
        crate::units::push_context(branch, "0123456789abcdef0123456789abcdef01234567")
    }

    /// The README's example, verbatim.
    const DESIGN_EXAMPLE: &str = r#"
[api]                                   # a unit
on = ["push", "pull_request", "release"] # default ["push"]
branches = ["main", "release/*"]        # globs, push only; default all
paths = ["api/**"]                      # only when a changed file matches
[api.pipeline]                          # a Tekton PipelineRun (or [api.task] for a TaskRun)
namespace = "ci"
ref = "build-and-deploy"                # pipelineRef (taskRef) name
service_account = "ferry-runner"
params = { revision = "{{ git.sha }}", url = "{{ repo.clone_url }}" }
[[api.docker]]                          # Kube Git Deploy actions: built into a generated pipeline
directory = "./api"
tag = "ghcr.io/acme/api:{{ git.sha }}"
[[api.helm]]
chart = "./api/deploy"
[api.preview]                           # pull requests: one environment per PR
image = "ghcr.io/acme/api:pr-{{ pr.number }}-{{ git.short_sha }}"
port = 8080
host = "api-pr-{{ pr.number }}.preview.example.com"
"#;

    #[test]
    fn the_design_example_reads_as_written() {
        // On a push there is no `pr`: the preview's fields render empty
        // (previews are for pull requests) and the file still reads.
        let units = parse(DESIGN_EXAMPLE, &context("main")).unwrap();
        assert_eq!(units.len(), 1);
        let api = &units[0];
        assert_eq!(api.name.as_str(), "api");
        assert_eq!(api.on, [On::Push, On::PullRequest, On::Release]);
        assert_eq!(api.branches, ["main", "release/*"]);
        assert_eq!(api.paths, ["api/**"]);
        let run = api.run.as_ref().unwrap();
        assert_eq!(
            (run.kind, run.namespace.as_deref(), run.reference.as_deref()),
            (RunKind::Pipeline, Some("ci"), Some("build-and-deploy"))
        );
        assert_eq!(run.params["revision"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(run.params["url"], "https://github.com/acme/api.git");
        assert_eq!(api.docker[0].tag, "ghcr.io/acme/api:0123456789abcdef0123456789abcdef01234567");
        assert_eq!(api.helm[0].chart, "./api/deploy");
        let preview = api.preview.as_ref().unwrap();
        assert_eq!((preview.host.as_str(), preview.port), ("api-pr-.preview.example.com", 8080));
        assert_eq!(api.skip_labels, [SKIP_LABEL]);
    }

    #[test]
    fn conditions_wrap_units_as_in_the_seed() {
        let source = r#"
{% if git.branch == "main" %}
[api]
[[api.docker]]
directory = "."
tag = "acme/api:{{ git.sha }}"
[[api.helm]]
chart = "./deploy"
{% endif %}
[docs.task]
ref = "publish"
"#;
        let on_main: Vec<String> =
            parse(source, &context("main")).unwrap().iter().map(|u| u.name.to_string()).collect();
        assert_eq!(on_main, ["api", "docs"]);
        let elsewhere: Vec<String> =
            parse(source, &context("feature/x")).unwrap().iter().map(|u| u.name.to_string()).collect();
        assert_eq!(elsewhere, ["docs"]);
        let docs = parse(source, &context("x")).unwrap().remove(0);
        assert_eq!(docs.run.unwrap().kind, RunKind::Task);
        assert_eq!(docs.on, [On::Push], "the default trigger");
    }

    #[test]
    fn values_cannot_break_out_of_their_string() {
        let source = "[api.pipeline]\nref = \"build\"\nparams = { branch = \"{{ git.branch }}\" }\n";
        let units = parse(source, &context("evil\"quote")).unwrap();
        assert_eq!(units[0].run.as_ref().unwrap().params["branch"], "evil\"quote");
    }

    #[test]
    fn every_problem_names_its_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("[api]\non = [\"push\"\nbranches = []\n", 3, "TOML: missing comma"),
            ("[api.pipeline]\nref = \"b\"\n\n[api.pipeline]\nref = \"c\"\n", 4, "TOML: "),
            ("[api]\nwhen = \"always\"\n[api.pipeline]\nref = \"b\"\n", 1, "unknown field `when`"),
            ("\n\n[api.pipeline]\nref = \"b\"\nretries = 3\n", 3, "unknown field `retries`"),
            ("[api]\non = [\"tag\"]\n[api.pipeline]\nref = \"b\"\n", 1, "unknown variant `tag`"),
            ("[api.pipeline]\nref = \"{{ git.sha }\"\n", 2, "template: "),
            ("\n[api.pipeline]\nref = \"{{ git.shaa }}\"\n", 3, "template: "),
            ("[api.pipeline]\nref = \"b\"\nparams = { n = \"{{ pr.numbr }}\" }\n", 3, "template: "),
            ("\n\n[api]\non = [\"push\"]\n", 3, "has nothing to run"),
            ("[api.pipeline]\nref = \"a\"\n[api.task]\nref = \"b\"\n", 1, "both [pipeline] and [task]"),
            ("[api.task]\nnamespace = \"ci\"\n", 1, "[task] needs `ref`"),
            ("[api]\nbranches = [\"a[\"]\n[api.pipeline]\nref = \"b\"\n", 1, "is not a glob"),
            ("[\"bad name\".pipeline]\nref = \"b\"\n", 1, "unit [bad name]"),
            ("[api]\n[[docker]]\ndirectory = \".\"\ntag = \"x\"\n", 2, "[docker] belongs to a unit"),
            ("version = 2\n", 1, "`version` is not a unit"),
            (
                "[a.task]\nref = \"x\"\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
                3,
                "template: ",
            ),
        ];
        for (source, line, says) in cases {
            let error = parse(source, &context("main")).unwrap_err();
            assert_eq!(error.line, Some(*line), "{source:?}: {error}");
            assert!(error.problem.contains(says), "{source:?}: {error} does not say {says:?}");
            assert!(error.to_string().starts_with(&format!("line {line}: ")));
        }
        let deep = format!("a = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let nested = parse(&deep, &context("main")).unwrap_err();
        assert!(nested.problem.contains("max recursion depth"), "TOML nesting is bounded too: {nested}");
        let unknown = parse("[api.pipeline]\nref = \"{{ git.shaa }}\"\n", &context("main")).unwrap_err();
        assert!(unknown.problem.contains("git.sha, git.short_sha"), "{unknown}");
    }

    #[tokio::test]
    async fn parse_bounded_answers_as_parse_does_or_at_its_time_limit() {
        let bounded = parse_bounded(DESIGN_EXAMPLE.to_owned(), context("main")).await;
        assert_eq!(bounded, parse(DESIGN_EXAMPLE, &context("main")));
        let hostile = "{{ 'x' * 100000000 }}".to_owned();
        assert!(parse_bounded(hostile, context("main")).await.unwrap_err().problem.contains("`*` is not allowed"));
        // Loops that run until their fuel is gone: never done at once.
        let slow = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}".to_owned();
        let late = parse_within(slow, context("main"), Duration::ZERO).await.unwrap_err();
        assert_eq!(late.problem, "template: rendering took longer than 0 s, the limit");
    }
}
