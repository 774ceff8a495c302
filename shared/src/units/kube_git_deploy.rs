//! `kube-git-deploy.toml`: the units file of Kube Git Deploy, read as its
//! users wrote it, for a repository without a `.ferry.toml`.
//!
//! Its syntax is not plain TOML: a unit is a table (`[api]`), and the
//! `[[docker]]` and `[[helm]]` headers that follow it are that unit's
//! actions, in document order (plain TOML would make them top-level
//! arrays). Its templates are Go's (`{{ .git.sha }}`,
//! `{{ if .git.branch == "master" }}…{{ end }}`): they are translated to the
//! template box's syntax and rendered there ([`super::template`]) with
//! Ferry's context, then the TOML is read in document order with
//! `toml_edit`. Each unit runs on every push, to any branch, as it did
//! there: its docker builds then its helm upgrades, in a generated pipeline.
//!
//! Every problem names its line in the file as written: a condition keeps
//! the lines of the branches it leaves out (as blank lines), so what
//! follows it keeps its numbering.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{Item, Table};

use super::file::{Docker, FileError, Helm, On, SKIP_LABEL, Unit};
use super::template::{MAX_SOURCE_BYTES, RENDER_TIME_LIMIT};
use super::{TemplateContext, line_at};
use crate::domain::UnitName;

/// The file's name at the repository root.
pub const FILE_NAME: &str = "kube-git-deploy.toml";

/// What the template translation reads, for error messages.
const READS: &str = "`{{ .git.sha }}`, `{{ if C }}`, `{{ else if C }}`, `{{ else }}` and `{{ end }}`, \
                     where C is `.a == \"x\"`, `.a != \"x\"`, `eq .a \"x\"`, `ne .a \"x\"`, `.a` or `not .a`";

/// Conditions nest at most this deep: each level keeps the lines of the
/// branches it leaves out, so the translation grows with the depth.
const MAX_DEPTH: usize = 16;

/// Renders `source` with `context`, then reads its units in file order.
pub fn parse(source: &str, context: &TemplateContext) -> Result<Vec<Unit>, FileError> {
    let translated = translate(source)?;
    let rendered = super::template::render(&translated.text, context).map_err(|e| FileError {
        line: e.line.and_then(|line| translated.lines.get(line.wrapping_sub(1)).copied()),
        problem: e.problem,
    })?;
    read(&close_open_strings(&rendered))
}

/// [`parse`] on a blocking thread, answered within the render's time limit,
/// as [`super::file::parse_bounded`] is.
pub async fn parse_bounded(source: String, context: TemplateContext) -> Result<Vec<Unit>, FileError> {
    super::file::within(RENDER_TIME_LIMIT, move || parse(&source, &context)).await
}

fn mistake(line: usize, problem: impl Into<String>) -> FileError {
    FileError { line: Some(line), problem: format!("template: {}", problem.into()) }
}

/// A Go template, read into the parts Ferry translates.
enum Node<'a> {
    Text { text: &'a str, line: usize },
    Value { path: &'a str },
    If { line: usize, branches: Vec<Branch<'a>> },
}

/// One branch of an `if`: its condition (`None`: `else`) and body.
struct Branch<'a> {
    condition: Option<String>,
    body: Vec<Node<'a>>,
}

/// An `if` still open while reading.
struct Open<'a> {
    line: usize,
    done: Vec<Branch<'a>>,
    current: Branch<'a>,
}

/// One `{{ … }}` action.
enum Action<'a> {
    Value(&'a str),
    If(String),
    ElseIf(String),
    Else,
    End,
}

fn tree(source: &str) -> Result<Vec<Node<'_>>, FileError> {
    let mut root = Vec::new();
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut rest = source;
    let mut line = 1;
    loop {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        if !text.is_empty() {
            body(&mut root, &mut open).push(Node::Text { text, line });
        }
        line += text.matches('\n').count();
        let Some(after) = after else { break };
        let end = after
            .find("}}")
            .filter(|&end| !after[..end].contains('\n'))
            .ok_or_else(|| mistake(line, "`{{` is not closed by `}}` on its line"))?;
        rest = &after[end + 2..];
        match action(after[..end].trim()).map_err(|problem| mistake(line, problem))? {
            Action::Value(path) => body(&mut root, &mut open).push(Node::Value { path }),
            Action::If(_) if open.len() == MAX_DEPTH => {
                return Err(mistake(line, format!("conditions nest more than {MAX_DEPTH} deep, the limit")));
            }
            Action::If(condition) => open.push(Open {
                line,
                done: Vec::new(),
                current: Branch { condition: Some(condition), body: Vec::new() },
            }),
            Action::ElseIf(condition) => next_branch(&mut open, Some(condition), line)?,
            Action::Else => next_branch(&mut open, None, line)?,
            Action::End => {
                let Some(Open { line: at, mut done, current }) = open.pop() else {
                    return Err(mistake(line, "`{{ end }}` without an `{{ if }}`"));
                };
                done.push(current);
                body(&mut root, &mut open).push(Node::If { line: at, branches: done });
            }
        }
    }
    match open.last() {
        Some(unclosed) => Err(mistake(unclosed.line, "`{{ if }}` is not closed by an `{{ end }}`")),
        None => Ok(root),
    }
}

fn body<'s, 'a>(root: &'s mut Vec<Node<'a>>, open: &'s mut [Open<'a>]) -> &'s mut Vec<Node<'a>> {
    match open.last_mut() {
        Some(innermost) => &mut innermost.current.body,
        None => root,
    }
}

fn next_branch<'a>(open: &mut [Open<'a>], condition: Option<String>, line: usize) -> Result<(), FileError> {
    let Some(innermost) = open.last_mut() else {
        return Err(mistake(line, "`{{ else }}` without an `{{ if }}`"));
    };
    if innermost.current.condition.is_none() {
        return Err(mistake(line, "an `{{ else }}` after the `{{ else }}` of the same `{{ if }}`"));
    }
    let finished = std::mem::replace(&mut innermost.current, Branch { condition, body: Vec::new() });
    innermost.done.push(finished);
    Ok(())
}

fn action(text: &str) -> Result<Action<'_>, String> {
    let words = words(text)?;
    match words.as_slice() {
        ["end"] => Ok(Action::End),
        ["else"] => Ok(Action::Else),
        ["else", "if", condition @ ..] => self::condition(condition).map(Action::ElseIf),
        ["if", condition @ ..] => self::condition(condition).map(Action::If),
        [field] if field.starts_with('.') => self::field(field).map(Action::Value),
        _ => Err(format!("`{{{{ {text} }}}}` is not a template Ferry reads: it reads {READS}")),
    }
}

/// An action's words; a double-quoted string is one word.
fn words(text: &str) -> Result<Vec<&str>, String> {
    let mut words = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = match rest.strip_prefix('"') {
            Some(quoted) => {
                2 + quoted.find('"').ok_or_else(|| format!("`{text}` has a string without its closing quote"))?
            }
            None => rest.find(char::is_whitespace).unwrap_or(rest.len()),
        };
        words.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Ok(words)
}

fn condition(words: &[&str]) -> Result<String, String> {
    match words {
        [a, op @ ("==" | "!="), b] => Ok(format!("{} {op} {}", operand(a)?, operand(b)?)),
        [function @ ("eq" | "ne"), a, b] => {
            let op = if *function == "eq" { "==" } else { "!=" };
            Ok(format!("{} {op} {}", operand(a)?, operand(b)?))
        }
        ["not", a] => Ok(format!("not {}", operand(a)?)),
        [a] => operand(a),
        _ => Err(format!("`{}` is not a condition Ferry reads: it reads {READS}", words.join(" "))),
    }
}

/// A field, or a string literal (the same in both syntaxes when it has no
/// escapes).
fn operand(word: &str) -> Result<String, String> {
    if word.starts_with('.') {
        return field(word).map(str::to_owned);
    }
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) if !inner.contains(['"', '\\']) => Ok(word.to_owned()),
        _ => Err(format!("`{word}` is neither a field (`.git.branch`) nor a plain string (\"master\")")),
    }
}

/// `.git.sha` → `git.sha`, when the context has it.
fn field(word: &str) -> Result<&str, String> {
    let path = &word[1..];
    if TemplateContext::VARIABLES.contains(&path) {
        return Ok(path);
    }
    let known: Vec<String> = TemplateContext::VARIABLES.iter().map(|v| format!(".{v}")).collect();
    Err(format!("`{word}` is not a field Ferry knows (known: {})", known.join(", ")))
}

/// The template in the box's syntax, and the source line of each of its lines.
struct Translated {
    text: String,
    lines: Vec<usize>,
}

impl Translated {
    fn grow(&mut self, more: usize) -> Result<(), FileError> {
        if self.text.len() + more > MAX_SOURCE_BYTES {
            return Err(FileError {
                line: None,
                problem: format!(
                    "the file is over {MAX_SOURCE_BYTES} bytes (256 KiB) once its conditions keep their lines, the limit"
                ),
            });
        }
        Ok(())
    }

    /// Text of the file as written. A `{` that would open a tag or a
    /// comment in the box's syntax is written as a value instead.
    fn text(&mut self, text: &str, line: usize) -> Result<(), FileError> {
        let mut at = line;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if matches!(chars.peek(), None | Some('%' | '#')) => self.tag("{{ \"{\" }}")?,
                '\n' => {
                    at += 1;
                    self.lines.push(at);
                    self.grow(1)?;
                    self.text.push('\n');
                }
                c => {
                    self.grow(c.len_utf8())?;
                    self.text.push(c);
                }
            }
        }
        Ok(())
    }

    fn tag(&mut self, tag: &str) -> Result<(), FileError> {
        self.grow(tag.len())?;
        self.text.push_str(tag);
        Ok(())
    }

    /// Blank lines standing for the lines of branches left out.
    fn pad(&mut self, count: usize, line: usize) -> Result<(), FileError> {
        self.grow(count)?;
        self.text.extend(std::iter::repeat_n('\n', count));
        self.lines.extend(std::iter::repeat_n(line, count));
        Ok(())
    }

    fn nodes(&mut self, nodes: &[Node<'_>]) -> Result<(), FileError> {
        for node in nodes {
            match node {
                Node::Text { text, line } => self.text(text, *line)?,
                Node::Value { path } => self.tag(&format!("{{{{ {path} }}}}"))?,
                Node::If { line, branches } => self.condition(branches, *line)?,
            }
        }
        Ok(())
    }

    /// Every branch renders the lines of the others as blank lines, so the
    /// `if` renders as many lines as it spans whichever branch is taken.
    fn condition(&mut self, branches: &[Branch<'_>], line: usize) -> Result<(), FileError> {
        let counts: Vec<usize> = branches.iter().map(|branch| newlines(&branch.body)).collect();
        let total: usize = counts.iter().sum();
        let mut before = 0;
        for (i, (branch, count)) in branches.iter().zip(&counts).enumerate() {
            match (&branch.condition, i) {
                (Some(condition), 0) => self.tag(&format!("{{% if {condition} %}}"))?,
                (Some(condition), _) => self.tag(&format!("{{% elif {condition} %}}"))?,
                (None, _) => self.tag("{% else %}")?,
            }
            self.pad(before, line)?;
            self.nodes(&branch.body)?;
            self.pad(total - before - count, line)?;
            before += count;
        }
        if branches.last().is_some_and(|branch| branch.condition.is_some()) {
            self.tag("{% else %}")?;
            self.pad(total, line)?;
        }
        self.tag("{% endif %}")
    }
}

fn newlines(nodes: &[Node<'_>]) -> usize {
    nodes
        .iter()
        .map(|node| match node {
            Node::Text { text, .. } => text.matches('\n').count(),
            Node::Value { .. } => 0,
            Node::If { branches, .. } => branches.iter().map(|branch| newlines(&branch.body)).sum(),
        })
        .sum()
}

/// The Go template as one the box renders, with its lines where they were.
fn translate(source: &str) -> Result<Translated, FileError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(FileError {
            line: None,
            problem: format!("the file is {} bytes, over the limit of {MAX_SOURCE_BYTES} (256 KiB)", source.len()),
        });
    }
    let nodes = tree(source)?;
    let mut translated = Translated { text: String::with_capacity(source.len()), lines: vec![1] };
    translated.nodes(&nodes)?;
    Ok(translated)
}

/// Closes a basic string left open at the end of its line (`key = "value`):
/// Kube Git Deploy's own template example writes its tag so, and users
/// copied it; a basic string cannot span lines, so this is its only reading.
/// A file with multi-line strings is left as it is.
fn close_open_strings(text: &str) -> String {
    if text.contains("\"\"\"") || text.contains("'''") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\n', '\r']);
        out.push_str(content);
        if left_open(content) {
            out.push('"');
        }
        out.push_str(&line[content.len()..]);
    }
    out
}

/// Whether `line` is `key = "…` with no closing quote.
fn left_open(line: &str) -> bool {
    let Some((key, value)) = line.split_once('=') else { return false };
    let key = key.trim();
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let Some(string) = value.trim_start().strip_prefix('"') else { return false };
    let mut chars = string.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return false,
            '\\' => drop(chars.next()),
            _ => {}
        }
    }
    bare
}

/// A header of the file, where it stands.
struct Header<'a> {
    position: Option<isize>,
    line: Option<usize>,
    what: Heading<'a>,
}

enum Heading<'a> {
    Unit(UnitName),
    Action(&'a str, &'a Table),
}

const ACTIONS: [&str; 2] = ["docker", "helm"];

fn read(text: &str) -> Result<Vec<Unit>, FileError> {
    let document = toml_edit::Document::parse(text).map_err(|e| FileError {
        line: e.span().map(|span| line_at(text, span.start)),
        problem: format!("TOML: {}", e.message().trim_end()),
    })?;
    let at = |span: Option<Range<usize>>| span.map(|span| line_at(text, span.start));
    let mut headers = Vec::new();
    for (key, item) in document.iter() {
        let line = at(item.span()).or_else(|| at(document.key(key).and_then(|k| k.span())));
        let wrong = |problem: String| FileError { line, problem };
        match item {
            Item::Table(_) if ACTIONS.contains(&key) => {
                return Err(wrong(format!("[{key}] is an action: write [[{key}]] under its unit's header")));
            }
            Item::Table(table) => headers.push(Header {
                position: table.position(),
                line,
                what: Heading::Unit(unit_header(key, table, text)?),
            }),
            Item::ArrayOfTables(actions) if ACTIONS.contains(&key) => {
                for table in actions.iter() {
                    let line = at(table.span());
                    headers.push(Header { position: table.position(), line, what: Heading::Action(key, table) });
                }
            }
            Item::ArrayOfTables(_) => {
                return Err(wrong(format!("[[{key}]] is not an action: a unit's actions are [[docker]] and [[helm]]")));
            }
            Item::Value(_) | Item::None => {
                return Err(wrong(format!("`{key}` is not a unit: every top-level entry is a [unit] header")));
            }
        }
    }
    headers.sort_by_key(|header| header.position);
    units(headers)
}

/// Each action goes to the unit whose header is the last before it.
fn units(headers: Vec<Header<'_>>) -> Result<Vec<Unit>, FileError> {
    let mut units: Vec<(Unit, Option<usize>)> = Vec::new();
    for Header { line, what, .. } in headers {
        match what {
            Heading::Unit(name) => units.push((unit(name), line)),
            Heading::Action(kind, table) => {
                let Some((unit, _)) = units.last_mut() else {
                    return Err(FileError {
                        line,
                        problem: format!("[[{kind}]] comes before any unit: put it under a unit's header, e.g. [api]"),
                    });
                };
                let wrong = |problem: String| FileError {
                    line,
                    problem: format!("unit [{}]: [[{kind}]]: {problem}", unit.name),
                };
                match kind {
                    "docker" => unit.docker.push(parameters::<Docker>(table).map_err(wrong)?),
                    _ => unit.helm.push(parameters::<Helm>(table).map_err(wrong)?),
                }
            }
        }
    }
    units
        .into_iter()
        .map(|(unit, line)| match unit.runs_something() {
            true => Ok(unit),
            false => Err(FileError {
                line,
                problem: format!(
                    "unit [{}] has no actions: give it [[docker]] or [[helm]] below its header",
                    unit.name
                ),
            }),
        })
        .collect()
}

/// A unit's header: its name, and nothing under it but actions.
fn unit_header(key: &str, table: &Table, text: &str) -> Result<UnitName, FileError> {
    let line = table.span().map(|span| line_at(text, span.start));
    let name = UnitName::parse(key.to_owned())
        .map_err(|e| FileError { line, problem: format!("unit [{key}]: {}", e.problem) })?;
    if let Some((inner, _)) = table.iter().next() {
        let line = table.key(inner).and_then(|k| k.span()).map(|span| line_at(text, span.start)).or(line);
        return Err(FileError {
            line,
            problem: format!(
                "unit [{key}]: unknown key `{inner}`: a unit holds only its [[docker]] and [[helm]] actions"
            ),
        });
    }
    Ok(name)
}

/// A unit as Kube Git Deploy ran it: on every push, to any branch.
fn unit(name: UnitName) -> Unit {
    Unit { skip_labels: vec![SKIP_LABEL.to_owned()], ..Unit::new(name, vec![On::Push]) }
}

fn parameters<T: DeserializeOwned>(table: &Table) -> Result<T, String> {
    let value = toml_edit::Value::InlineTable(table.clone().into_inline_table());
    T::deserialize(value.into_deserializer()).map_err(|e| e.message().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn context(branch: &str) -> TemplateContext {
        crate::units::push_context(branch, SHA)
    }

    /// The Kube Git Deploy documentation's basic example, verbatim.
    const BASIC_EXAMPLE: &str = include_str!("../../../events/kube-git-deploy/basic.toml");

    /// Its template example, verbatim: the tag's closing quote is missing there.
    const TEMPLATE_EXAMPLE: &str = include_str!("../../../events/kube-git-deploy/template.toml");

    fn docker(directory: &str, tag: &str) -> Docker {
        Docker { directory: directory.into(), tag: tag.into(), dockerfile: None }
    }

    fn helm(chart: &str) -> Helm {
        Helm { chart: chart.into(), release: None, namespace: None, values: Default::default() }
    }

    fn expected(name: &str, docker: Vec<Docker>, helm: Vec<Helm>) -> Unit {
        Unit { docker, helm, ..unit(UnitName::parse(name).unwrap()) }
    }

    #[test]
    fn the_basic_example_gives_api_and_ui_each_a_build_then_a_deploy_on_any_branch() {
        for branch in ["master", "feature/x"] {
            let units = parse(BASIC_EXAMPLE, &context(branch)).unwrap();
            assert_eq!(
                units,
                [
                    expected(
                        "api",
                        vec![docker("./api", &format!("noahhuppert/example-api:{SHA}"))],
                        vec![helm("./api/deploy")]
                    ),
                    expected(
                        "ui",
                        vec![docker("./ui", &format!("noahhuppert/example-ui:{SHA}"))],
                        vec![helm("./ui/deploy")]
                    ),
                ],
                "{branch}"
            );
            assert!(units.iter().all(|u| u.on == [On::Push] && u.branches.is_empty() && u.run.is_none()));
        }
    }

    #[test]
    fn the_template_example_gives_api_on_master_only() {
        let on_master = parse(TEMPLATE_EXAMPLE, &context("master")).unwrap();
        assert_eq!(
            on_master,
            [expected("api", vec![docker(".", &format!("noahhuppert/example-api:{SHA}"))], vec![helm("./deploy")])]
        );
        assert_eq!(parse(TEMPLATE_EXAMPLE, &context("main")).unwrap(), []);
    }

    #[test]
    fn actions_belong_to_the_unit_above_them_in_document_order() {
        let source = "[web]\n[[helm]]\nchart = \"w\"\n[ui]\n[[docker]]\ndirectory = \"u\"\ntag = \"u:1\"\n\
                      [[helm]]\nchart = \"u1\"\n[[helm]]\nchart = \"u2\"\n[api]\n[[docker]]\ndirectory = \"a\"\ntag = \"a:1\"\n";
        let units = parse(source, &context("main")).unwrap();
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["web", "ui", "api"], "file order, not sorted");
        assert_eq!((units[0].docker.len(), units[0].helm.len()), (0, 1));
        assert_eq!(units[1].docker, [docker("u", "u:1")]);
        assert_eq!(units[1].helm, [helm("u1"), helm("u2")]);
        assert_eq!((units[2].docker.clone(), units[2].helm.len()), (vec![docker("a", "a:1")], 0));
    }

    #[test]
    fn go_templates_translate_to_the_boxs_syntax() {
        let cases: &[(&str, &str)] = &[
            ("{{ .git.sha }}", "{{ git.sha }}"),
            ("{{.repo.name}}", "{{ repo.name }}"),
            ("{{ if .git.branch == \"master\" }}a{{ end }}", "{% if git.branch == \"master\" %}a{% else %}{% endif %}"),
            (
                "{{ if .git.branch != \"x\" }}a{{ else }}b{{ end }}",
                "{% if git.branch != \"x\" %}a{% else %}b{% endif %}",
            ),
            ("{{ if eq .git.branch \"a b\" }}a{{ end }}", "{% if git.branch == \"a b\" %}a{% else %}{% endif %}"),
            ("{{ if ne .git.tag .git.branch }}a{{ end }}", "{% if git.tag != git.branch %}a{% else %}{% endif %}"),
            ("{{ if not .git.tag }}a{{ end }}", "{% if not git.tag %}a{% else %}{% endif %}"),
            (
                "{{ if .git.tag }}t{{ else if .git.branch }}b{{ else }}n{{ end }}",
                "{% if git.tag %}t{% elif git.branch %}b{% else %}n{% endif %}",
            ),
            // A false branch keeps its lines: each branch writes the others' as blank lines.
            ("{{ if .git.tag }}\na\n{{ else }}\nb{{ end }}\n", "{% if git.tag %}\na\n\n{% else %}\n\n\nb{% endif %}\n"),
            ("{{ if .git.tag }}\n{{ end }}", "{% if git.tag %}\n{% else %}\n{% endif %}"),
            // The box's own tags in the text stay text.
            ("a = \"{% x %} {# y #} {\"", "a = \"{{ \"{\" }}% x %} {{ \"{\" }}# y #} {\""),
        ];
        for (go, boxed) in cases {
            assert_eq!(translate(go).map(|t| t.text).as_deref(), Ok(*boxed), "{go}");
        }
        let rendered = |source: &str, branch: &str| {
            super::super::template::render(&translate(source).unwrap().text, &context(branch)).unwrap()
        };
        assert_eq!(rendered("{{ .repo.name }}@{{ .git.branch }}", "main"), "api@main");
        let nested = "{{ if .git.branch }}\n{{ if eq .git.branch \"main\" }}\nm\n{{ end }}\nb\n{{ end }}\nz\n";
        assert_eq!(rendered(nested, "main"), "\n\nm\n\nb\n\nz\n");
        assert_eq!(rendered(nested, "dev"), "\n\n\n\nb\n\nz\n");
        assert_eq!(rendered("x = \"{% raw %}\"", "main"), "x = \"{% raw %}\"");
    }

    #[test]
    fn an_open_string_is_closed_at_its_lines_end_only_there() {
        let cases = [
            ("tag = \"a:b\n", "tag = \"a:b\"\n"),
            ("tag = \"a:b\"\n", "tag = \"a:b\"\n"),
            ("tag = \"a\\\"b\n", "tag = \"a\\\"b\"\n"),
            ("tag = \"a\" # \"b\n", "tag = \"a\" # \"b\n"),
            ("tag = 'a\n", "tag = 'a\n"),
            ("x = \"\"\"\ntag = \"a\n\"\"\"\n", "x = \"\"\"\ntag = \"a\n\"\"\"\n"),
            ("# tag = \"a\n", "# tag = \"a\n"),
        ];
        for (text, closed) in cases {
            assert_eq!(close_open_strings(text), closed, "{text:?}");
        }
    }

    #[test]
    fn every_mistake_names_its_line_in_the_file_as_written() {
        let cases: &[(&str, &str, usize, &str)] = &[
            (
                "unknown action key",
                "[api]\n[[docker]]\ndirectory = \".\"\ntag = \"x\"\nimage = \"y\"\n",
                2,
                "unknown field `image`",
            ),
            ("missing key", "[api]\n\n[[helm]]\nnamespace = \"x\"\n", 3, "missing field `chart`"),
            (
                "action before a unit",
                "\n[[docker]]\ndirectory = \".\"\ntag = \"x\"\n[api]\n",
                2,
                "comes before any unit",
            ),
            (
                "unterminated if",
                "[api]\n{{ if .git.branch == \"master\" }}\n[[helm]]\nchart = \".\"\n",
                2,
                "is not closed by an `{{ end }}`",
            ),
            ("end without if", "[api]\n[[helm]]\nchart = \".\"\n{{ end }}\n", 4, "`{{ end }}` without an `{{ if }}`"),
            ("else without if", "\n{{ else }}\n", 2, "without an `{{ if }}`"),
            ("two elses", "{{ if .git.tag }}\n{{ else }}\n{{ else }}\n{{ end }}\n", 3, "after the `{{ else }}`"),
            (
                "unknown field",
                "[api]\n[[helm]]\nchart = \"{{ .git.shaa }}\"\n",
                3,
                "`.git.shaa` is not a field Ferry knows",
            ),
            (
                "unknown field in a condition",
                "\n{{ if .git.brnch == \"m\" }}{{ end }}",
                2,
                "`.git.brnch` is not a field",
            ),
            ("action left open", "[api]\n[[helm]]\nchart = \"{{ .git.sha \"\n", 3, "`{{` is not closed by `}}`"),
            (
                "an unread construct",
                "[api]\n[[helm]]\nchart = \"{{ printf \"%s\" .git.sha }}\"\n",
                3,
                "is not a template Ferry reads",
            ),
            ("an unread condition", "{{ if and .git.tag .git.branch }}{{ end }}", 1, "is not a condition Ferry reads"),
            ("a unit's own key", "[api]\nnamespace = \"x\"\n[[helm]]\nchart = \".\"\n", 2, "unknown key `namespace`"),
            ("a unit's sub-table", "[api]\n[api.docker]\ndirectory = \".\"\n", 2, "unknown key `docker`"),
            ("a unit with no action", "[api]\n[ui]\n[[helm]]\nchart = \".\"\n", 1, "unit [api] has no actions"),
            ("a single action table", "[api]\n[docker]\ndirectory = \".\"\n", 2, "write [[docker]]"),
            ("an unknown action", "[api]\n[[kubectl]]\nfile = \"x\"\n", 2, "[[kubectl]] is not an action"),
            ("a top-level key", "version = 2\n[api]\n", 1, "`version` is not a unit"),
            ("a bad unit name", "[\"bad name\"]\n[[helm]]\nchart = \".\"\n", 1, "unit [bad name]"),
            ("TOML", "[api]\n[[helm]]\nchart = [\".\"\n", 3, "TOML: "),
            (
                "after a false condition",
                "{{ if .git.tag }}\n[a]\n\n{{ end }}\n[api]\n[[helm]]\nchart = 1\n",
                6,
                "[[helm]]: invalid type",
            ),
        ];
        for (what, source, line, says) in cases {
            let error = parse(source, &context("main")).unwrap_err();
            assert_eq!(error.line, Some(*line), "{what}: {error}");
            assert!(error.problem.contains(says), "{what}: {error} does not say {says:?}");
        }
        let deep = format!("{}{}", "{{ if .git.tag }}".repeat(MAX_DEPTH + 1), "{{ end }}".repeat(MAX_DEPTH + 1));
        assert!(parse(&deep, &context("main")).unwrap_err().problem.contains("nest more than 16 deep"));
        let wide =
            format!("{}{}{}", "{{ if .git.tag }}".repeat(MAX_DEPTH), "\n".repeat(20_000), "{{ end }}".repeat(16));
        assert!(parse(&wide, &context("main")).unwrap_err().problem.contains("once its conditions keep their lines"));
        let nested = format!("[api]\n[[helm]]\nchart = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let nested = parse(&nested, &context("main")).unwrap_err();
        assert_eq!(nested.line, Some(3), "TOML nesting is bounded too: {nested}");
    }

    #[tokio::test]
    async fn parse_bounded_answers_as_parse_does() {
        let bounded = parse_bounded(BASIC_EXAMPLE.to_owned(), context("main")).await;
        assert_eq!(bounded, parse(BASIC_EXAMPLE, &context("main")));
        assert_eq!(bounded.unwrap().len(), 2);
    }
}
