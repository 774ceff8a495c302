//! What deciding a launch costs before any I/O: render and read a
//! `.ferry.toml`, plan a push against it, build the run's manifest; and
//! what the worst hostile templates cost before their limits stop them.
//! `cargo bench -p ferry --bench units`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ferry::cluster::manifests::{self, Cause, RunInput};
use ferry::domain::event::{Detail, GitEvent, Push};
use ferry::domain::{RefName, RepoName, Sha};
use ferry::units::operator::Defaults;
use ferry::units::plan::{Happening, plan};
use ferry::units::{TemplateContext, file};

/// A unit with every action and a preview, and three more units of the
/// kinds repositories have (a condition, path globs, docker and helm).
const FILE: &str = r#"
[api]
on = ["push", "pull_request", "release"]
branches = ["main", "release/*"]
paths = ["api/**"]
[api.pipeline]
namespace = "ci"
ref = "build-and-deploy"
service_account = "ferry-runner"
params = { revision = "{{ git.sha }}", url = "{{ repo.clone_url }}" }
[[api.docker]]
directory = "./api"
tag = "ghcr.io/acme/api:{{ git.sha }}"
[[api.helm]]
chart = "./api/deploy"
[api.preview]
image = "ghcr.io/acme/api:pr-{{ pr.number }}-{{ git.short_sha }}"
port = 8080
host = "api-pr-{{ pr.number }}.preview.example.com"

{% if git.branch == "main" %}
[web]
paths = ["web/**", "shared/**"]
[[web.docker]]
directory = "./web"
tag = "ghcr.io/acme/web:{{ git.short_sha }}"
{% endif %}

[docs]
paths = ["docs/**"]
[docs.task]
ref = "publish-docs"

[worker]
branches = ["main"]
paths = ["worker/**/*.rs", "Cargo.lock"]
[[worker.helm]]
chart = "./worker/chart"
values = { "image.tag" = "{{ git.sha }}" }
"#;

fn push(paths: Vec<String>) -> GitEvent {
    let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
    let push = Push { changed_paths: paths, ..Push::to(RefName::parse("refs/heads/main").unwrap(), sha.clone(), sha) };
    GitEvent {
        clone_url: Some("https://github.com/acme/api.git".into()),
        ..GitEvent::new("push", Some(RepoName::parse("acme/api").unwrap()), Detail::Push(push))
    }
}

fn bench(c: &mut Criterion) {
    let repo = RepoName::parse("acme/api").unwrap();
    let paths: Vec<String> =
        (0..200).map(|i| format!("src/module_{i}/file_{i}.rs")).chain(["api/src/lib.rs".into()]).collect();
    let event = push(paths.clone());
    let Detail::Push(detail) = &event.detail else { unreachable!() };
    let context = TemplateContext::new(&event, &repo, &detail.after);
    let units = file::parse(FILE, &context).unwrap();
    let happening = Happening::Push { branch: Some("main".into()) };
    let defaults = Defaults::default();

    c.bench_function("render and read a 4-unit .ferry.toml", |b| {
        b.iter(|| file::parse(black_box(FILE), &context).unwrap())
    });
    c.bench_function("plan a push of 201 paths against 4 units", |b| {
        b.iter(|| plan(black_box(&happening), &units, Some(&paths)))
    });
    c.bench_function("build a generated PipelineRun", |b| {
        b.iter(|| {
            manifests::run(&RunInput {
                repo: &repo,
                unit: &units[0],
                sha: &detail.after,
                cause: Cause::Push,
                lane: "refs/heads/main",
                clone_url: "https://github.com/acme/api.git",
                defaults: &defaults,
                happened_at: None,
                pending: true,
            })
        })
    });
}

/// Templates that do the most work the box allows per instruction, each
/// until its fuel or the render's deadline ends it in an error.
fn hostile(c: &mut Criterion) {
    let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
    let context = TemplateContext::new(&push(Vec::new()), &RepoName::parse("acme/api").unwrap(), &sha);
    let big = "x".repeat(16 * 1024 - 1);
    let loops = |body: &str| {
        format!(
            "{{% set b = \"{big}a\" %}}{{% set c = \"{big}b\" %}}{{% for i in range(1000) %}}{{% for j in range(1000) %}}{body}{{% endfor %}}{{% endfor %}}"
        )
    };
    let cases = [
        ("reverse a 16 KiB string until the limits", loops("{% set x = b | reverse %}")),
        ("slice a 16 KiB string until the limits", loops("{% set x = b[1:] %}")),
        ("compare two 16 KiB strings until the limits", loops("{% if b == c %}{% endif %}")),
    ];
    let mut group = c.benchmark_group("hostile templates");
    group.sample_size(10);
    for (name, template) in &cases {
        assert!(file::parse(template, &context).is_err(), "{name} ends in an error");
        group.bench_function(*name, |b| b.iter(|| file::parse(black_box(template), &context).unwrap_err()));
    }
    group.finish();
}

criterion_group!(benches, bench, hostile);
criterion_main!(benches);
