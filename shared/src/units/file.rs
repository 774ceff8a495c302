//! `.ferry.toml`: the units a repository asks for (DESIGN.md, "Units").
//!
//! The whole file is a template first, as in the Kube Git Deploy seed, so
//! a condition can wrap a unit (`{% if git.branch == "main" %}…{% endif %}`)
//! and any value can use the context; the rendered text is then TOML. Every
//! problem names its line, and line numbers survive rendering: block tags
//! keep their line breaks.

use std::collections::BTreeMap;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Deserialize;

use super::TemplateContext;
use crate::domain::UnitName;

/// Template instructions one render may run: ample for any real file,
/// fatal to `{% for i in range(100000) %}{% for j in range(100000) %}`.
pub const TEMPLATE_FUEL: u64 = 200_000;

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
}

impl Unit {
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
}

/// Renders `source` with `context`, then reads its units, in file order
/// of their names (sorted: a table's keys have no order in TOML).
pub fn parse(source: &str, context: &TemplateContext) -> Result<Vec<Unit>, FileError> {
    let rendered = render(source, context)?;
    read(&rendered)
}

fn render(source: &str, context: &TemplateContext) -> Result<String, FileError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // A file is read before anyone reviews it: bound the work a template may do.
    env.set_fuel(Some(TEMPLATE_FUEL));
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).build() {
        env.set_syntax(syntax);
    }
    // Values land inside TOML strings: escape what would end or bend one.
    env.set_formatter(|out, state, value| {
        if value.is_undefined() {
            return minijinja::escape_formatter(out, state, value);
        }
        let text = value.to_string();
        let escaped = toml_escape(&text);
        out.write_str(&escaped).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
    });
    env.render_str(source, template_values(context)).map_err(|e| {
        let detail = e.detail().map(str::to_owned).unwrap_or_else(|| e.kind().to_string());
        let problem = match e.kind() {
            minijinja::ErrorKind::UndefinedError => {
                format!("template: {detail} (known: {})", TemplateContext::VARIABLES.join(", "))
            }
            _ => format!("template: {detail}"),
        };
        FileError { line: e.line(), problem }
    })
}

/// The context as template values. A part the event does not have (`pr`
/// on a push) is false in a condition and prints its known fields empty,
/// so a preview's `{{ pr.number }}` does not break the push that ignores it;
/// an unknown field is still an error.
fn template_values(context: &TemplateContext) -> Value {
    let part = |value: Option<Value>, fields: &'static [&'static str]| {
        value.unwrap_or_else(|| Value::from_object(Absent(fields)))
    };
    let parts: BTreeMap<&str, Value> = BTreeMap::from([
        ("git", Value::from(minijinja::value::Serde(&context.git))),
        ("repo", Value::from(minijinja::value::Serde(&context.repo))),
        ("pr", part(context.pr.as_ref().map(|pr| Value::from(minijinja::value::Serde(pr))), &["number", "head_sha"])),
        (
            "release",
            part(context.release.as_ref().map(|r| Value::from(minijinja::value::Serde(r))), &["tag", "prerelease"]),
        ),
        ("event", Value::from(context.event.clone())),
    ]);
    Value::from(parts)
}

/// A context part the event lacks: falsy, its known fields empty.
#[derive(Debug)]
struct Absent(&'static [&'static str]);

impl minijinja::value::Object for Absent {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().filter(|k| self.0.contains(k)).map(|_| Value::from(""))
    }

    fn is_true(self: &std::sync::Arc<Self>) -> bool {
        false
    }

    fn render(self: &std::sync::Arc<Self>, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

fn toml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn read(text: &str) -> Result<Vec<Unit>, FileError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    // The seed's own layout (`[api]` then `[[docker]]`) is not valid for a
    // unit in TOML: say how to write it before anything else.
    if let Some(name) = ["docker", "helm", "pipeline", "task", "preview"].into_iter().find(|n| table.contains_key(*n)) {
        return Err(FileError {
            line: line_of_table(text, name),
            problem: format!("[{name}] belongs to a unit: write [<unit>.{name}] (or [[<unit>.{name}]])"),
        });
    }
    let mut units = Vec::new();
    for (name, value) in table {
        let at = line_of_table(text, &name).or_else(|| line_of_key(text, &name));
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
    };
    if !unit.runs_something() && unit.preview.is_none() {
        return Err(
            "has nothing to run: give [pipeline] or [task] a `ref`, or docker or helm actions, or a [preview]".into()
        );
    }
    Ok(unit)
}

/// The line of the first table header naming unit `name`, 1-based.
fn line_of_table(text: &str, name: &str) -> Option<usize> {
    let quoted = format!("\"{name}\"");
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            if !line.starts_with('[') {
                return false;
            }
            let header = line.trim_start_matches('[').trim_start();
            let rest = header.strip_prefix(name).or_else(|| header.strip_prefix(quoted.as_str()));
            rest.is_some_and(|rest| rest.trim_start().starts_with([']', '.']))
        })
        .map(|i| i + 1)
}

/// The line of the first `name = …` (or `name.… = …`) outside any table, 1-based.
fn line_of_key(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .take_while(|line| !line.trim_start().starts_with('['))
        .position(|line| {
            line.trim_start().strip_prefix(name).is_some_and(|rest| rest.trim_start().starts_with(['=', '.']))
        })
        .map(|i| i + 1)
}

fn toml_error(text: &str, error: &toml::de::Error) -> FileError {
    let line = error.span().map(|span| 1 + text[..span.start.min(text.len())].matches('\n').count());
    FileError { line, problem: format!("TOML: {}", error.message().trim_end()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Detail, GitEvent, Push};
    use crate::domain::{RefName, RepoName, Sha};

    fn context(branch: &str) -> TemplateContext {
        let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        let event = GitEvent {
            name: "push".into(),
            action: None,
            installation: None,
            repo: Some(RepoName::parse("acme/api").unwrap()),
            clone_url: Some("https://github.com/acme/api.git".into()),
            sender: None,
            happened_at: None,
            detail: Detail::Push(Push {
                git_ref: RefName::parse(format!("refs/heads/{branch}")).unwrap(),
                before: sha.clone(),
                after: sha.clone(),
                deleted: false,
                forced: false,
                changed_paths: vec![],
                paths_truncated: false,
            }),
        };
        TemplateContext::new(&event, &RepoName::parse("acme/api").unwrap(), &sha)
    }

    /// The example of DESIGN.md, verbatim.
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
        let unknown = parse("[api.pipeline]\nref = \"{{ git.shaa }}\"\n", &context("main")).unwrap_err();
        assert!(unknown.problem.contains("git.sha, git.short_sha"), "{unknown}");
    }
}
