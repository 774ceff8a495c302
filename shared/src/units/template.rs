//! The box a `.ferry.toml` template renders in. A repository's file is
//! read before anyone reviews it, so its template may be hostile: it must
//! end in a [`FileError`] naming the limit it hit, never in an allocation
//! the process cannot survive.
//!
//! Fuel counts instructions, not bytes, so it cannot bound memory alone:
//! `{{ "x" * 100000000 }}` is one instruction. The box therefore
//!
//! - refuses a source over [`MAX_SOURCE_BYTES`] before parsing it;
//! - parses the template and refuses, before running it, every construct
//!   that can grow a value past its inputs: the `~`, `*` and string `+`
//!   operators, block captures (`{% set %}…{% endset %}`, `{% filter %}`,
//!   recursive loops, whose output bypasses the output bound), lists and
//!   maps built from variables (`[a, a]` doubles `a`), quoted strings over
//!   [`MAX_VALUE_BYTES`] and literals over [`MAX_LITERAL_ITEMS`], calls with
//!   more than [`MAX_ARGUMENTS`] arguments or arguments that compute
//!   (minijinja computes them all before the call), and every filter, test
//!   and function not on a short list;
//! - bounds what the allowed filters that copy (`replace`, `join`, `string`,
//!   `upper`, `lower`, `trim`, `reverse`) build to [`MAX_VALUE_BYTES`], and
//!   `range` to [`MAX_RANGE`] items, each checking the deadline;
//! - writes the output into a sink that fails past [`MAX_OUTPUT_BYTES`];
//! - answers a panic inside the engine with an error;
//! - stops at [`TEMPLATE_FUEL`] instructions, and its filters and output
//!   stop once [`RENDER_TIME_LIMIT`] has passed.
//!
//! With these, every value is at most a few times [`MAX_VALUE_BYTES`] (16
//! KiB: quoted strings, the context and the bounded filters are), and one
//! instruction holds at most [`MAX_ARGUMENTS`] of them, so every instruction
//! does bounded work and fuel bounds the whole: at most 200,000 copies of
//! 16 KiB, a few GB of memory traffic and no growth, within seconds.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io;
use std::time::{Duration, Instant};

use minijinja::machinery::ast::{self, BinOpKind, CallArg, CallType, Expr, Stmt};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::TemplateContext;
use super::file::{FILE_NAME, FileError};

/// A source longer than this is refused before it is parsed.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// The rendered file may be at most this long.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// A string a filter builds, or the source writes in quotes, may be at most
/// this long: every copy a template can ask for costs at most this much.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// A list or map written in the source may hold at most this many items,
/// and, written out as text (where a string's every character may take six),
/// at most [`MAX_VALUE_BYTES`].
pub const MAX_LITERAL_ITEMS: usize = 256;
/// A call, filter or test takes at most this many arguments, each a name,
/// an attribute or a literal: minijinja computes every argument before the
/// call, so nested calls would pile up copies no limit sees.
pub const MAX_ARGUMENTS: usize = 3;
/// `range` gives at most this many numbers.
pub const MAX_RANGE: usize = 1_000;
/// Template instructions one render may run: ample for any real file,
/// fatal to `{% for i in range(1000) %}{% for j in range(1000) %}`.
pub const TEMPLATE_FUEL: u64 = 200_000;
/// Wall-clock time one render (and the read of its output) may take.
pub const RENDER_TIME_LIMIT: Duration = Duration::from_secs(2);

/// The filters a template may use: none can grow a value unboundedly
/// (those that could are replaced below by bounded versions).
const FILTERS: &[&str] = &[
    "abs", "bool", "count", "d", "default", "first", "float", "int", "join", "last", "length", "lower", "replace",
    "reverse", "round", "string", "trim", "upper",
];

/// The tests a template may use: each answers a yes or no.
const TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "even",
    "false",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "sequence",
    "startingwith",
    "string",
    "true",
    "undefined",
    "upper",
];

/// The functions a template may call.
const FUNCTIONS: &[&str] = &["range"];

/// Renders `source` with `context` in the box.
pub fn render(source: &str, context: &TemplateContext) -> Result<String, FileError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(FileError {
            line: None,
            problem: format!("the file is {} bytes, over the limit of {MAX_SOURCE_BYTES} (256 KiB)", source.len()),
        });
    }
    let deadline = Instant::now() + RENDER_TIME_LIMIT;
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| template_error(&e))?;
    let tree = minijinja::machinery::parse(source, FILE_NAME, syntax.clone()).map_err(|e| template_error(&e))?;
    allowed_stmt(&tree).map_err(|refused| FileError {
        line: refused.line,
        problem: format!("template: {} is not allowed in {FILE_NAME}", refused.what),
    })?;
    let env = environment(syntax, deadline);
    let template = env.template_from_str(source).map_err(|e| template_error(&e))?;
    let mut sink = Bounded::new(MAX_OUTPUT_BYTES);
    // A panic in the engine on some input must not take the caller down.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        template.render_captured_to(template_values(context), &mut sink).map(drop)
    }));
    let Ok(rendered) = rendered else {
        return Err(FileError { line: None, problem: "template: the template engine failed on this file".into() });
    };
    match rendered {
        Ok(()) => Ok(sink.text),
        Err(_) if sink.full => Err(FileError {
            line: None,
            problem: format!("template: the rendered file would be over {MAX_OUTPUT_BYTES} bytes (1 MiB), the limit"),
        }),
        Err(e) => Err(template_error(&e)),
    }
}

fn template_error(e: &Error) -> FileError {
    let detail = e.detail().map(str::to_owned).unwrap_or_else(|| e.kind().to_string());
    let problem = match e.kind() {
        ErrorKind::UndefinedError => {
            format!("template: {detail} (known: {})", TemplateContext::VARIABLES.join(", "))
        }
        ErrorKind::OutOfFuel => format!("template: more than {TEMPLATE_FUEL} instructions, the limit"),
        _ => format!("template: {detail}"),
    };
    FileError { line: e.line(), problem }
}

fn environment(syntax: minijinja::syntax::SyntaxConfig, deadline: Instant) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    // Values land inside TOML strings: escape what would end or bend one.
    env.set_formatter(move |out, state, value| {
        in_time(deadline)?;
        if value.is_undefined() {
            return minijinja::escape_formatter(out, state, value);
        }
        write!(TomlEscaped(out), "{value}").map_err(|_| Error::new(ErrorKind::WriteFailure, "output refused"))
    });
    // String filters take strings only: turning a list into text is work
    // no limit would see.
    env.add_filter("upper", move |value: &str| {
        in_time(deadline)?;
        bounded(value.to_uppercase())
    });
    env.add_filter("lower", move |value: &str| {
        in_time(deadline)?;
        bounded(value.to_lowercase())
    });
    env.add_filter("replace", move |value: &str, from: &str, to: &str, count: Option<usize>| {
        in_time(deadline)?;
        replace(value, from, to, count)
    });
    env.add_filter("join", move |value: Value, separator: Option<String>| {
        in_time(deadline)?;
        join(&value, separator.as_deref().unwrap_or(""))
    });
    env.add_filter("string", move |value: Value| {
        in_time(deadline)?;
        display(&value).map(Value::from)
    });
    env.add_filter("trim", move |value: &str, chars: Option<&str>| {
        in_time(deadline)?;
        Ok::<_, Error>(match chars {
            Some(chars) => value.trim_matches(|c| chars.contains(c)).to_owned(),
            None => value.trim().to_owned(),
        })
    });
    env.add_filter("reverse", move |value: Value| {
        in_time(deadline)?;
        reverse(&value)
    });
    env.add_test("startingwith", move |value: &str, prefix: &str| {
        in_time(deadline)?;
        Ok::<_, Error>(value.starts_with(prefix))
    });
    env.add_test("endingwith", move |value: &str, suffix: &str| {
        in_time(deadline)?;
        Ok::<_, Error>(value.ends_with(suffix))
    });
    env.add_function("range", move |start: i64, stop: Option<i64>, step: Option<i64>| {
        in_time(deadline)?;
        range(start, stop, step)
    });
    env
}

fn in_time(deadline: Instant) -> Result<(), Error> {
    if Instant::now() < deadline {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("rendering took longer than {} s, the limit", RENDER_TIME_LIMIT.as_secs()),
    ))
}

fn too_long() -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("a value would be over {MAX_VALUE_BYTES} bytes, the limit"))
}

fn bounded(text: String) -> Result<String, Error> {
    if text.len() > MAX_VALUE_BYTES { Err(too_long()) } else { Ok(text) }
}

/// `replace`, measured before it is built.
fn replace(value: &str, from: &str, to: &str, count: Option<usize>) -> Result<String, Error> {
    let matches = value.matches(from).count().min(count.unwrap_or(usize::MAX));
    let length = (value.len() - matches * from.len()).saturating_add(matches.saturating_mul(to.len()));
    if length > MAX_VALUE_BYTES {
        return Err(too_long());
    }
    Ok(match count {
        Some(n) => value.replacen(from, to, n),
        None => value.replace(from, to),
    })
}

fn join(value: &Value, separator: &str) -> Result<String, Error> {
    if value.is_undefined() || value.is_none() {
        return Ok(String::new());
    }
    let mut out = Bounded::new(MAX_VALUE_BYTES);
    for (i, item) in value.try_iter()?.enumerate() {
        let written = if i == 0 { Ok(()) } else { out.write_str(separator) };
        written.and_then(|()| write!(out, "{item}")).map_err(|_| too_long())?;
    }
    Ok(out.text)
}

/// A string's characters, or a sequence's items, in reverse order.
fn reverse(value: &Value) -> Result<Value, Error> {
    if let Some(text) = value.as_str() {
        return Ok(Value::from(text.chars().rev().collect::<String>()));
    }
    let mut items: Vec<Value> = value.try_iter()?.collect();
    items.reverse();
    Ok(Value::from(items))
}

fn display(value: &Value) -> Result<String, Error> {
    let mut out = Bounded::new(MAX_VALUE_BYTES);
    write!(out, "{value}").map_err(|_| too_long())?;
    Ok(out.text)
}

/// minijinja's `range`, refused past [`MAX_RANGE`] numbers.
fn range(start: i64, stop: Option<i64>, step: Option<i64>) -> Result<Value, Error> {
    let (start, stop) = match stop {
        Some(stop) => (start, stop),
        None => (0, start),
    };
    let step = step.unwrap_or(1);
    let span = i128::from(stop) - i128::from(start);
    let count = match step {
        0 => 0,
        step if (span > 0) == (step > 0) => (span.abs() + i128::from(step).abs() - 1) / i128::from(step).abs(),
        _ => 0,
    };
    if count > MAX_RANGE as i128 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("range would give {count} numbers, over the limit of {MAX_RANGE}"),
        ));
    }
    let narrow =
        |n: i64| isize::try_from(n).map_err(|_| Error::new(ErrorKind::InvalidOperation, "range out of bounds"));
    minijinja::functions::range(narrow(start)?, Some(narrow(stop)?), Some(narrow(step)?))
}

/// A string that refuses to grow past its limit: the rendered output (as
/// an `io::Write`, what minijinja renders into) and the bounded filters.
struct Bounded {
    text: String,
    limit: usize,
    full: bool,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Self { text: String::new(), limit, full: false }
    }
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.text.len() + s.len() > self.limit {
            self.full = true;
            return Err(fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

impl io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // minijinja writes whole `str`s, so each piece is UTF-8 by itself.
        let s = std::str::from_utf8(buf).map_err(io::Error::other)?;
        fmt::Write::write_str(self, s).map_err(|_| io::Error::other("output limit"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes through to the output, escaped for a TOML basic string.
struct TomlEscaped<'a, 'b>(&'a mut minijinja::Output<'b>);

impl fmt::Write for TomlEscaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            let escape = matches!(c, '"' | '\\' | '\n') || c.is_control();
            if !escape {
                continue;
            }
            self.0.write_str(&s[plain..i])?;
            match c {
                '"' => self.0.write_str("\\\"")?,
                '\\' => self.0.write_str("\\\\")?,
                '\n' => self.0.write_str("\\n")?,
                c => write!(self.0, "\\u{:04X}", c as u32)?,
            }
            plain = i + c.len_utf8();
        }
        self.0.write_str(&s[plain..])
    }
}

/// What a template was refused for, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    line: Option<usize>,
    what: String,
}

fn refuse<T>(span: minijinja::machinery::Span, what: impl Into<String>) -> Result<T, Refused> {
    Err(Refused { line: Some(usize::from(span.start_line)), what: what.into() })
}

fn allowed_stmts(stmts: &[Stmt<'_>]) -> Result<(), Refused> {
    stmts.iter().try_for_each(allowed_stmt)
}

fn allowed_stmt(stmt: &Stmt<'_>) -> Result<(), Refused> {
    match stmt {
        Stmt::Template(t) => allowed_stmts(&t.children),
        Stmt::EmitRaw(_) => Ok(()),
        Stmt::EmitExpr(e) => allowed_expr(&e.expr),
        Stmt::ForLoop(f) if f.recursive => refuse(f.span(), "a recursive loop"),
        Stmt::ForLoop(f) => {
            allowed_target(&f.target)?;
            allowed_expr(&f.iter)?;
            f.filter_expr.iter().try_for_each(allowed_expr)?;
            allowed_stmts(&f.body)?;
            allowed_stmts(&f.else_body)
        }
        Stmt::IfCond(i) => {
            allowed_expr(&i.expr)?;
            allowed_stmts(&i.true_body)?;
            allowed_stmts(&i.false_body)
        }
        Stmt::WithBlock(w) => {
            for (target, expr) in &w.assignments {
                allowed_target(target)?;
                allowed_expr(expr)?;
            }
            allowed_stmts(&w.body)
        }
        Stmt::Set(s) => {
            allowed_target(&s.target)?;
            allowed_expr(&s.expr)
        }
        Stmt::SetBlock(s) => refuse(s.span(), "`{% set %}…{% endset %}`"),
        Stmt::FilterBlock(s) => refuse(s.span(), "`{% filter %}`"),
        Stmt::AutoEscape(s) => refuse(s.span(), "`{% autoescape %}`"),
        Stmt::Do(s) => refuse(s.span(), "`{% do %}`"),
        // The statements other minijinja features add (macros, includes…).
        #[allow(unreachable_patterns)]
        _ => Err(Refused { line: None, what: "this statement".into() }),
    }
}

/// What `set`, `for` and `with` may assign to: names, not attributes.
fn allowed_target(target: &Expr<'_>) -> Result<(), Refused> {
    match target {
        Expr::Var(_) => Ok(()),
        Expr::Tuple(t) => t.items.iter().try_for_each(allowed_target),
        other => refuse(other.span(), "assigning to anything but a name"),
    }
}

fn allowed_expr(expr: &Expr<'_>) -> Result<(), Refused> {
    match expr {
        Expr::Const(c) if c.value.as_str().is_some_and(|s| s.len() > MAX_VALUE_BYTES) => {
            refuse(c.span(), format!("a string of over {MAX_VALUE_BYTES} bytes"))
        }
        Expr::Var(_) | Expr::Const(_) => Ok(()),
        // minijinja 3.0.5 panics on a negative step over an empty string.
        Expr::Slice(s) if s.step.is_some() => refuse(s.span(), "a slice with a step"),
        Expr::Slice(s) => {
            allowed_expr(&s.expr)?;
            [&s.start, &s.stop].into_iter().flatten().try_for_each(allowed_expr)
        }
        Expr::UnaryOp(u) => allowed_expr(&u.expr),
        Expr::BinOp(b) => {
            allowed_operator(b)?;
            allowed_expr(&b.left)?;
            allowed_expr(&b.right)
        }
        Expr::Compare(c) => {
            allowed_expr(&c.expr)?;
            c.ops.iter().try_for_each(|op| allowed_expr(&op.expr))
        }
        Expr::IfExpr(i) => {
            allowed_expr(&i.test_expr)?;
            allowed_expr(&i.true_expr)?;
            i.false_expr.iter().try_for_each(allowed_expr)
        }
        Expr::Filter(f) if !FILTERS.contains(&f.name) => refuse(f.span(), format!("the filter `{}`", f.name)),
        Expr::Filter(f) => {
            f.expr.iter().try_for_each(allowed_expr)?;
            allowed_args(&f.args)
        }
        Expr::Test(t) if !TESTS.contains(&t.name) => refuse(t.span(), format!("the test `{}`", t.name)),
        Expr::Test(t) => {
            allowed_expr(&t.expr)?;
            allowed_args(&t.args)
        }
        Expr::GetAttr(a) => allowed_expr(&a.expr),
        Expr::GetItem(g) => {
            allowed_expr(&g.expr)?;
            allowed_expr(&g.subscript_expr)
        }
        Expr::Call(c) => match c.identify_call() {
            CallType::Function(name) if FUNCTIONS.contains(&name) => allowed_args(&c.args),
            CallType::Function(name) => refuse(c.span(), format!("the function `{name}`")),
            _ => refuse(c.span(), "calling a method"),
        },
        Expr::List(_) | Expr::Tuple(_) | Expr::Map(_) if items(expr) > MAX_LITERAL_ITEMS => {
            refuse(expr.span(), format!("a literal of over {MAX_LITERAL_ITEMS} items"))
        }
        Expr::List(_) | Expr::Tuple(_) | Expr::Map(_) if as_text(expr) > MAX_VALUE_BYTES => {
            refuse(expr.span(), format!("a literal of over {MAX_VALUE_BYTES} bytes as text"))
        }
        Expr::List(_) | Expr::Tuple(_) | Expr::Map(_) if literal(expr) => Ok(()),
        other => refuse(other.span(), format!("a {} of anything but literals", other.description())),
    }
}

/// `~`, `*` and `+` of strings or lists grow a value past its inputs; `+`
/// with a number literal beside it can only add numbers.
fn allowed_operator(op: &ast::BinOp<'_>) -> Result<(), Refused> {
    let number = |e: &Expr<'_>| matches!(e, Expr::Const(c) if c.value.is_number());
    match op.op {
        BinOpKind::Concat => refuse(op.left.span(), "`~` (write the parts side by side: \"a{{ x }}b\")"),
        BinOpKind::Mul => refuse(op.left.span(), "`*`"),
        // `x in "text"` turns `x` into text first, however large a list it is.
        BinOpKind::In if !matches!(op.left, Expr::Const(_)) && !matches!(op.right, Expr::List(_) | Expr::Tuple(_)) => {
            refuse(op.left.span(), "`in` but with a quoted string on its left or a list written out on its right")
        }
        BinOpKind::Add if !number(&op.left) && !number(&op.right) => {
            refuse(op.left.span(), "`+` but with a number literal")
        }
        _ => Ok(()),
    }
}

fn allowed_args(args: &[CallArg<'_>]) -> Result<(), Refused> {
    if let Some(extra) = args.get(MAX_ARGUMENTS) {
        let at = match extra {
            CallArg::Pos(e) | CallArg::Kwarg(_, e) | CallArg::PosSplat(e) | CallArg::KwargSplat(e) => e.span(),
        };
        return refuse(at, format!("more than {MAX_ARGUMENTS} arguments"));
    }
    args.iter().try_for_each(|arg| match arg {
        CallArg::Pos(e) | CallArg::Kwarg(_, e) if simple(e) => allowed_expr(e),
        CallArg::Pos(e) | CallArg::Kwarg(_, e) => refuse(e.span(), "an argument that is not a name or a literal"),
        CallArg::PosSplat(e) | CallArg::KwargSplat(e) => refuse(e.span(), "`*args` or `**kwargs`"),
    })
}

/// A name, an attribute or item of one, or a literal: an argument that
/// computes nothing.
fn simple(expr: &Expr<'_>) -> bool {
    match expr {
        Expr::Var(_) => true,
        Expr::GetAttr(a) => simple(&a.expr),
        Expr::GetItem(g) => simple(&g.expr) && literal(&g.subscript_expr),
        other => literal(other),
    }
}

/// How long a literal is at most as text, where each character of a string
/// may be escaped to six.
fn as_text(expr: &Expr<'_>) -> usize {
    match expr {
        Expr::Const(c) => c.value.as_str().map_or(24, |s| 6 * s.len() + 2),
        Expr::UnaryOp(u) => as_text(&u.expr),
        Expr::List(l) => l.items.iter().map(|i| as_text(i) + 2).sum(),
        Expr::Tuple(t) => t.items.iter().map(|i| as_text(i) + 2).sum(),
        Expr::Map(m) => m.keys.iter().chain(&m.values).map(|i| as_text(i) + 2).sum(),
        _ => 0,
    }
}

/// How many items a literal list, tuple or map holds, nested ones included.
fn items(expr: &Expr<'_>) -> usize {
    match expr {
        Expr::List(l) => l.items.len() + l.items.iter().map(items).sum::<usize>(),
        Expr::Tuple(t) => t.items.len() + t.items.iter().map(items).sum::<usize>(),
        Expr::Map(m) => m.keys.len() + m.keys.iter().chain(&m.values).map(items).sum::<usize>(),
        _ => 0,
    }
}

/// A value written out in full in the source: no variable, nothing computed.
fn literal(expr: &Expr<'_>) -> bool {
    match expr {
        Expr::Const(_) => true,
        Expr::UnaryOp(u) => literal(&u.expr),
        Expr::List(l) => l.items.iter().all(literal),
        Expr::Tuple(t) => t.items.iter().all(literal),
        Expr::Map(m) => m.keys.iter().chain(&m.values).all(literal),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> TemplateContext {
        crate::units::push_context("feature/x", "0123456789abcdef0123456789abcdef01234567")
    }

    #[test]
    fn what_real_files_use_still_renders() {
        let cases = [
            ("{{ git.branch | replace('/', '-') }}", "feature-x"),
            ("{{ git.branch | upper }} {{ 'ABC' | lower }}", "FEATURE/X abc"),
            ("{{ ['a', 'b'] | join(',') }}", "a,b"),
            ("{% for i in range(3) %}[s{{ i + 1 }}]{% endfor %}", "[s1][s2][s3]"),
            ("{% for i in range(10, 0, -4) %}{{ i }} {% endfor %}", "10 6 2 "),
            ("{% if git.branch in ['main', 'dev'] %}yes{% else %}no{% endif %}", "no"),
            ("{% set tag = git.short_sha %}{{ tag }}", "0123456"),
            ("{{ pr.number | default('none') }}|{{ git.tag | default('untagged', true) }}", "|untagged"),
            ("{{ git.sha[:7] }} {{ (git.sha | length) - 33 }}", "0123456 7"),
            ("{{ 'a\"b' }}", "a\\\"b"),
            ("{{ 'line\nbreak' }}", "line\\nbreak"),
            ("{{ range(3) | string }}", "[0, 1, 2]"),
        ];
        for (source, expected) in cases {
            assert_eq!(render(source, &context()).as_deref(), Ok(expected), "{source}");
        }
    }

    /// Hostile templates, each with what its error must say. None may
    /// allocate past the limits: the refused ones never run, the others
    /// stop at a bound.
    #[test]
    fn hostile_templates_end_in_an_error_naming_the_limit() {
        let kib = |n: usize| "a".repeat(n * 1024);
        let cases: Vec<(String, &str)> = vec![
            (r#"{{ "x" * 100000000 }}"#.into(), "`*` is not allowed"),
            (r#"{{ ["x"] * 100000000 }}"#.into(), "`*` is not allowed"),
            (r#"{% set a = git.sha %}{% set b = a ~ a %}{{ b ~ b }}"#.into(), "`~` (write the parts"),
            (r#"{{ git.sha + git.sha }}"#.into(), "`+` but with a number literal"),
            (r#"{% set l = [1] %}{% set l = l + l %}"#.into(), "`+` but with a number literal"),
            (r#"{% set a %}{{ git.sha }}{{ git.sha }}{% endset %}"#.into(), "`{% set %}…{% endset %}` is not allowed"),
            (r#"{% filter upper %}x{% endfilter %}"#.into(), "`{% filter %}` is not allowed"),
            (r#"{% for x in [1] recursive %}{{ loop([]) }}{% endfor %}"#.into(), "a recursive loop"),
            (r#"{% set a = [git.sha, git.sha] %}"#.into(), "list literal of anything but literals"),
            (r#"{% set a = {"k": git.sha} %}"#.into(), "map literal of anything but literals"),
            (r#"{{ "%s%s" | format(git.sha, git.sha) }}"#.into(), "the filter `format`"),
            (r#"{{ git.sha | indent(100000000) }}"#.into(), "the filter `indent`"),
            (r#"{{ range(9) | batch(3, git.sha) }}"#.into(), "the filter `batch`"),
            (r#"{{ [1] | map(attribute="x", default=git.sha) }}"#.into(), "the filter `map`"),
            (r#"{{ git.sha | pprint }}"#.into(), "the filter `pprint`"),
            (r#"{% set ns = namespace(s="x") %}"#.into(), "the function `namespace`"),
            (r#"{{ debug() }}"#.into(), "the function `debug`"),
            (r#"{% for x in [1] %}{{ loop.cycle(git.sha) }}{% endfor %}"#.into(), "calling a method"),
            (r#"{{ range(*[1]) }}"#.into(), "`*args` or `**kwargs`"),
            (r#"{{ ""[::-1] }}"#.into(), "a slice with a step"),
            (r#"{% set a.b = 1 %}"#.into(), "assigning to anything but a name"),
            (r#"{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"#.into(), "unknown statement macro"),
            (r#"{% include "x" %}"#.into(), "unknown statement include"),
            (r#"{{ range(100000) | join }}"#.into(), "over the limit of 1000"),
            (format!(r#"{{{{ range(1000) | join("{}") }}}}"#, kib(1)), "over 16384 bytes"),
            // Lists turned into text: refused, or a string-only filter or test refuses them.
            (format!("{{% set l = [{}] %}}", format!("'{}', ", "a".repeat(3000)).repeat(3)), "bytes as text"),
            (r#"{% set r = range(1000) %}{% if r in "x" %}{% endif %}"#.into(), "`in` but with"),
            (r#"{% set r = range(1000) %}{{ r | trim }}"#.into(), "not a string"),
            (r#"{% set r = range(1000) %}{{ r is startingwith "x" }}"#.into(), "not a string"),
            (r#"{{ git.sha is in("abc") }}"#.into(), "the test `in`"),
            (format!(r#"{{{{ "{}" | replace("a", "aaaaa") }}}}"#, kib(10)), "over 16384 bytes"),
            (format!(r#"{{{{ "{}" | replace("", "{}") }}}}"#, kib(1), kib(1)), "over 16384 bytes"),
            (format!(r#"{{{{ "{}" }}}}"#, kib(17)), "a string of over 16384 bytes"),
            (format!("{{{{ [{}] }}}}", "1, ".repeat(300)), "a literal of over 256 items"),
            // Arguments are computed before the call: nested ones would pile up copies.
            (r#"{{ range(git.sha | trim) }}"#.into(), "an argument that is not a name or a literal"),
            (r#"{{ range(range(3) | length) }}"#.into(), "an argument that is not a name or a literal"),
            (r#"{{ range(1, 2, 3, 4) }}"#.into(), "more than 3 arguments"),
            (
                format!(
                    "{{% set b = git.sha %}}{{% for i in range(1000) %}}{{% for j in range(1000) %}}{}{{% endfor %}}{{% endfor %}}",
                    "{% set x = b | reverse %}".repeat(10)
                ),
                "instructions",
            ),
            ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}".into(), "instructions"),
            (format!("{{% for i in range(1000) %}}{}{{% endfor %}}", "a".repeat(1100)), "over 1048576 bytes (1 MiB)"),
            (
                format!("{{% set s = '{}' %}}{{% for i in range(1000) %}}{{{{ s }}}}{{% endfor %}}", "a".repeat(1100)),
                "over 1048576 bytes (1 MiB)",
            ),
            (format!("{}{}", "{% if true %}".repeat(1000), "{% endif %}".repeat(1000)), "maximum recursion limits"),
            (format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000)), "maximum recursion limits"),
            (kib(257), "over the limit of 262144 (256 KiB)"),
        ];
        for (source, says) in &cases {
            let started = Instant::now();
            let error = render(source, &context()).unwrap_err();
            let took = started.elapsed();
            let shown: String = source.chars().take(80).collect();
            assert!(error.problem.contains(says), "{shown}: {error} does not say {says:?}");
            assert!(took < RENDER_TIME_LIMIT, "{shown}: took {took:?}");
        }
    }

    /// A value, what to replace, with what, at most how often, and the result (`None`: refused).
    type ReplaceCase = (&'static str, &'static str, String, Option<usize>, Option<String>);

    #[test]
    fn replace_is_measured_before_it_is_built() {
        let quarter = MAX_VALUE_BYTES / 4;
        let cases: Vec<ReplaceCase> = vec![
            ("a-b-c", "-", "/".into(), None, Some("a/b/c".into())),
            ("a-b-c", "-", "/".into(), Some(1), Some("a/b-c".into())),
            ("abc", "", "-".into(), None, Some("-a-b-c-".into())),
            ("abc", "x", "yyy".into(), None, Some("abc".into())),
            ("aaaa", "a", "b".repeat(quarter), None, Some("b".repeat(MAX_VALUE_BYTES))),
            ("aaaa", "a", "b".repeat(quarter + 1), None, None),
            ("aaaa", "a", "b".repeat(quarter + 1), Some(3), Some(format!("{}a", "b".repeat(3 * quarter + 3)))),
        ];
        for (value, from, to, count, expected) in cases {
            let result = replace(value, from, &to, count);
            match expected {
                Some(expected) => assert_eq!(result.unwrap(), expected),
                None => assert!(result.unwrap_err().to_string().contains("over 16384 bytes")),
            }
        }
    }

    #[test]
    fn range_counts_before_it_builds() {
        // (start, stop, step) and how many numbers (`None`: refused).
        type RangeCase = ((i64, Option<i64>, Option<i64>), Option<usize>);
        let cases: [RangeCase; 9] = [
            ((3, None, None), Some(3)),
            ((0, Some(10), Some(3)), Some(4)),
            ((10, Some(0), Some(-3)), Some(4)),
            ((0, Some(10), Some(-1)), Some(0)),
            ((-5, None, None), Some(0)),
            ((0, Some(MAX_RANGE as i64), None), Some(MAX_RANGE)),
            ((0, Some(MAX_RANGE as i64 + 1), None), None),
            ((i64::MIN, Some(i64::MAX), Some(1)), None),
            ((i64::MAX, Some(i64::MIN), Some(-1)), None),
        ];
        for ((start, stop, step), expected) in cases {
            let result = range(start, stop, step);
            match expected {
                Some(n) => assert_eq!(result.unwrap().len(), Some(n), "{start} {stop:?} {step:?}"),
                None => assert!(result.is_err(), "{start} {stop:?} {step:?}"),
            }
        }
    }

    #[test]
    fn a_bounded_string_refuses_past_its_limit() {
        let mut out = Bounded::new(4);
        assert!(out.write_str("abc").is_ok());
        assert!(out.write_str("de").is_err());
        assert!(out.full);
        assert_eq!(out.text, "abc", "a refused piece is not half written");
        assert!(out.write_str("d").is_ok());
        assert!(join(&Value::from(vec!["ab"; 3]), "").is_ok());
        assert!(join(&Value::from(vec!["a"; MAX_VALUE_BYTES + 1]), "").is_err());
    }

    #[test]
    fn the_deadline_stops_filters_and_output() {
        assert!(in_time(Instant::now() + Duration::from_secs(1)).is_ok());
        let past = Instant::now() - Duration::from_millis(1);
        assert!(in_time(past).unwrap_err().to_string().contains("longer than 2 s, the limit"));
        let env = environment(minijinja::syntax::SyntaxConfig::default(), past);
        for source in ["{{ 1 }}", "{{ 'a' | upper }}", "{{ range(2) }}"] {
            let error = env.render_str(source, ()).unwrap_err();
            assert!(error.to_string().contains("longer than 2 s"), "{source}: {error}");
        }
        assert_eq!(env.render_str("plain text", ()).unwrap(), "plain text");
    }
}
