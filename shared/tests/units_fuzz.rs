//! `.ferry.toml` render → read under arbitrary and hostile input: no
//! panic, and never more output than the box allows. Fixed seeds, so a run
//! is the same run everywhere.

use std::time::{Duration, Instant};

use ferry::units::template::{self, MAX_OUTPUT_BYTES};
use ferry::units::{GitContext, PrContext, RepoContext, TemplateContext, file};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn context() -> TemplateContext {
    TemplateContext {
        git: GitContext {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            short_sha: "0123456".into(),
            branch: Some("feature/x".into()),
            tag: None,
        },
        repo: RepoContext {
            owner: "acme".into(),
            name: "api".into(),
            full_name: "acme/api".into(),
            clone_url: "https://github.com/acme/api.git".into(),
        },
        pr: Some(PrContext { number: 7, head_sha: "0123456789abcdef0123456789abcdef01234567".into() }),
        release: None,
        event: "pull_request".into(),
    }
}

fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(seed), ..ProptestConfig::default() }
}

/// Pieces of templates that try to grow, nest, recurse or break out, and
/// the glue that makes them whole.
const HOSTILE: &[&str] = &[
    "{{ 'x' * 100000000 }}",
    "{% set a = git.sha %}",
    "{% set a = a ~ a %}",
    "{% set a = a | replace('0', a) %}",
    "{% set a = a | join(a) %}",
    "{% set a = a | upper | lower %}",
    "{% set a = [a, a] %}",
    "{% set a = range(1000) | string %}",
    "{{ a }}",
    "{{ a | string }}",
    "{{ range(1000) | join('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }}",
    "{{ git.sha | replace('', git.sha) }}",
    "{% for i in range(1000) %}",
    "{% for c in a %}",
    "{% endfor %}",
    "{% if a %}",
    "{% else %}",
    "{% endif %}",
    "{% set s %}",
    "{% endset %}",
    "{% filter upper %}",
    "{% endfilter %}",
    "{% macro m() %}{{ m() }}{% endmacro %}",
    "{{ m() }}",
    "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
    "{{ (((((((((( 1 )))))))))) }}",
    "{{ a[::-1] }}",
    "{{ a in a }}",
    "{{ pr.number + 1 }}",
    "{{ undefined_name }}",
    "{{ pr.nope }}",
    "[u.task]\nref = \"",
    "[u.preview]\nimage = \"i\"\nport = 80\nhost = \"",
    "\"\n",
    "a = [[[[[[[[",
    "]]]]]]]]\n",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "\\",
    "\"",
    "\n",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// Only what the box allows, so the runtime bounds (value, output, fuel,
/// range) are what stops these, not the refusal before running.
const GROWING: &[&str] = &[
    "{% set a = git.sha %}",
    "{% set a = a | replace('0', a) %}",
    "{% set a = a | replace('', '0123456789') %}",
    "{% set a = a | join(a) %}",
    "{% set a = a | upper | lower %}",
    "{% set a = range(1000) | string %}",
    "{% set a = a | reverse %}",
    "{{ a }}",
    "{{ a | join(',') }}",
    "{% for i in range(1000) %}",
    "{% for c in a %}",
    "{% endfor %}",
    "{% if a is startingwith '0' %}",
    "{% endif %}",
    "{{ a[-3:] }}",
    "{{ a[1:-1] }}",
    "{{ pr.number + 1 }}",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// The lines of near-valid files: real keys and values, some misspelt or
/// misplaced, some templated.
const NEAR_VALID: &[&str] = &[
    "[api]",
    "[api.pipeline]",
    "[api.task]",
    "[[api.docker]]",
    "[[api.helm]]",
    "[api.preview]",
    "[\"bad name\".pipeline]",
    "[docker]",
    "on = [\"push\", \"pull_request\", \"release\"]",
    "on = [\"push\"]",
    "on = [\"tag\"]",
    "branches = [\"main\", \"release/*\"]",
    "branches = [\"a[\"]",
    "paths = [\"api/**\"]",
    "drafts = true",
    "skip_labels = []",
    "namespace = \"ci\"",
    "ref = \"build-and-deploy\"",
    "ref = \"{{ git.sha }}\"",
    "service_account = \"ferry-runner\"",
    "params = { revision = \"{{ git.sha }}\", url = \"{{ repo.clone_url }}\" }",
    "directory = \"./api\"",
    "tag = \"ghcr.io/acme/api:{{ git.short_sha }}\"",
    "chart = \"./deploy\"",
    "values = { a = \"b\" }",
    "image = \"ghcr.io/acme/api:pr-{{ pr.number }}\"",
    "port = 8080",
    "port = 99999",
    "host = \"api-pr-{{ pr.number }}.preview.example.com\"",
    "retries = 3",
    "version = 2",
    "{% if git.branch == \"main\" %}",
    "{% if pr %}",
    "{% endif %}",
    "{% for i in range(3) %}",
    "[shard{{ i }}.task]",
    "{% endfor %}",
    "# a comment",
    "",
];

/// Renders and reads `source`: whatever the answer, it came soon and the
/// output stayed within the bound.
fn assert_bounded(source: &str) -> Result<(), TestCaseError> {
    let started = Instant::now();
    if let Ok(text) = template::render(source, &context()) {
        prop_assert!(text.len() <= MAX_OUTPUT_BYTES, "rendered {} bytes", text.len());
    }
    if let Ok(units) = file::parse(source, &context()) {
        prop_assert!(units.iter().all(|u| u.runs_something() || u.preview.is_some()));
    }
    // Generous for a debug build on a busy machine; what matters is that
    // nothing runs on unbounded.
    prop_assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    Ok(())
}

proptest! {
    #![proptest_config(config(2_000, 0x5EC_0001))]

    /// Hostile fragments in any order and number.
    #[test]
    fn hostile_templates_end_bounded(parts in prop::collection::vec(prop::sample::select(HOSTILE), 0..24)) {
        assert_bounded(&parts.concat())?;
    }
}

proptest! {
    #![proptest_config(config(2_000, 0x5EC_0004))]

    /// Allowed pieces that grow, loop and print, in any order and number.
    #[test]
    fn growing_templates_end_bounded(parts in prop::collection::vec(prop::sample::select(GROWING), 0..24)) {
        assert_bounded(&parts.concat())?;
    }
}

proptest! {
    #![proptest_config(config(2_000, 0x5EC_0002))]

    /// Arbitrary text, and arbitrary bytes read as a file would be.
    #[test]
    fn arbitrary_text_ends_bounded(text in any::<String>(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_bounded(&text)?;
        assert_bounded(&String::from_utf8_lossy(&bytes))?;
    }
}

proptest! {
    #![proptest_config(config(2_000, 0x5EC_0003))]

    /// Lines of near-valid files, in any order, with one character changed.
    #[test]
    fn near_valid_files_end_bounded(
        lines in prop::collection::vec(prop::sample::select(NEAR_VALID), 0..30),
        position in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let file = lines.join("\n");
        assert_bounded(&file)?;
        let mut chars: Vec<char> = file.chars().collect();
        if !chars.is_empty() {
            let at = position.index(chars.len());
            chars[at] = replacement;
        }
        assert_bounded(&chars.into_iter().collect::<String>())?;
    }
}

/// The grammars reach both outcomes, so the properties above check reading
/// and rendering, not only refusing.
#[test]
fn the_grammars_reach_valid_files_and_every_limit() {
    let file = ["[api]", "on = [\"push\"]", "[api.pipeline]", "ref = \"{{ git.sha }}\""];
    assert!(file.iter().all(|line| NEAR_VALID.contains(line)));
    assert_eq!(file::parse(&file.join("\n"), &context()).unwrap().len(), 1);
    let hostile = |parts: &[usize]| parts.iter().map(|&i| HOSTILE[i]).collect::<String>();
    let cases: [(&[usize], &str); 4] = [
        (&[12, 12, 45, 45, 14, 14], "over 1048576 bytes"),
        (&[1, 3, 3, 3, 3], "over 16384 bytes"),
        (&[0], "`*` is not allowed"),
        (&[12, 12, 14, 14], "instructions"),
    ];
    for (parts, says) in cases {
        let rendered = template::render(&hostile(parts), &context()).map(|text| text.len());
        assert!(rendered.as_ref().is_err_and(|e| e.problem.contains(says)), "{parts:?}: {rendered:?}");
    }
}
