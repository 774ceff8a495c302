//! The failing step's log (README.md, "Results in seconds"): which TaskRun
//! of a run failed, which of its steps, and the last lines that step's
//! container wrote, with anything that looks like a token masked before
//! it can reach a check run.

use serde_json::Value;

/// How many of the failed step's last lines a check run shows.
pub const TAIL_LINES: usize = 30;

/// At most this many of a PipelineRun's TaskRuns are read to find the failed one.
pub const TASK_RUNS_READ: usize = 50;

/// The most of a log read from the cluster.
pub const LOG_BYTES: usize = 64 * 1024;

/// The longest line kept: a minified bundle is not a log line.
const LINE_LIMIT: usize = 500;

/// The TaskRuns of a PipelineRun (its `status.childReferences`), in order.
pub fn child_task_runs(pipeline_run: &Value) -> Vec<String> {
    let children = pipeline_run["status"]["childReferences"].as_array().into_iter().flatten();
    children.filter(|c| c["kind"] == "TaskRun").filter_map(|c| c["name"].as_str().map(str::to_owned)).collect()
}

/// Where a failed TaskRun's failed step ran: its pod, the step's container
/// and the step's name. The first step that exited non-zero; `None` when
/// the TaskRun did not fail or no step says so (it never started).
pub fn failed_step(task_run: &Value) -> Option<(String, String, String)> {
    if super::phase_of(task_run) == crate::domain::repair::RunPhase::Succeeded {
        return None;
    }
    let pod = task_run["status"]["podName"].as_str().filter(|p| !p.is_empty())?;
    let steps = task_run["status"]["steps"].as_array()?;
    let failed = steps.iter().find(|s| s["terminated"]["exitCode"].as_i64().is_some_and(|code| code != 0))?;
    let name = failed["name"].as_str()?;
    // Tekton names a step's container `step-<name>`; newer Tektons say so.
    let container = failed["container"].as_str().map_or_else(|| format!("step-{name}"), str::to_owned);
    Some((pod.to_owned(), container, name.to_owned()))
}

/// The last [`TAIL_LINES`] lines of `log`, each cut to a readable length
/// and masked: every one of `secrets` (values of at least 8 characters),
/// and anything shaped like a GitHub or GitLab token.
pub fn tail(log: &str, secrets: &[&str]) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..]
        .iter()
        .map(|line| {
            let mut line = mask(&plain(line), secrets);
            if line.len() > LINE_LIMIT {
                line.truncate(line.floor_char_boundary(LINE_LIMIT));
                line.push('…');
            }
            line
        })
        .collect()
}

/// `line` without terminal escape sequences (colours, cursor moves): a
/// check run shows text, and a sequence must not split a token from its
/// mask.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        // CSI: ESC [ parameters… final byte in @..~; any other escape: ESC and one more.
        if chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            chars.next();
        }
    }
    out
}

/// Token prefixes GitHub and GitLab document: a scan for a few literals,
/// where a regex engine would be a dependency for the same.
const TOKEN_PREFIXES: [&str; 9] = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glptt-"];

const MASK: &str = "***";

/// `line` with every secret value and every token-shaped word replaced by `***`.
pub fn mask(line: &str, secrets: &[&str]) -> String {
    let mut line = line.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        line = line.replace(secret, MASK);
    }
    for prefix in TOKEN_PREFIXES {
        let mut from = 0;
        while let Some(found) = line[from..].find(prefix) {
            let start = from + found;
            let rest = &line[start + prefix.len()..];
            let length =
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(rest.len());
            // A word that merely starts like a token (`ghs_` alone) is no token.
            if length >= 8 {
                line.replace_range(start..start + prefix.len() + length, MASK);
                from = start + MASK.len();
            } else {
                from = start + prefix.len();
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_and_secret_values_are_masked_and_the_rest_is_left() {
        let cases = [
            ("cloning with ghs_16C7e42F292c6912E7710c838347Ae178B4a done", "cloning with *** done"),
            ("GITLAB=glpat-xxxxxxxxxxxxxxxxxxxx; next", "GITLAB=***; next"),
            ("two: ghp_abcdefghijklmnop and github_pat_11ABCDEFG0123456789_abcdefghij", "two: *** and ***"),
            ("password=hunter2hunter2 user=ci", "password=*** user=ci"),
            ("the ghs_ prefix alone is not a token", "the ghs_ prefix alone is not a token"),
            ("short value hunter2 stays (below 8 characters)", "short value hunter2 stays (below 8 characters)"),
            ("unicode é ghs_abcdefghijkl ü", "unicode é *** ü"),
        ];
        for (line, expected) in cases {
            assert_eq!(mask(line, &["hunter2hunter2", "hunter2"]), expected, "{line}");
        }
    }

    #[test]
    fn terminal_colours_are_dropped_before_masking() {
        let coloured = "\u{1b}[31merror:\u{1b}[0m token gh\u{1b}[1ms_abcdefghijklmnop\u{1b}[0m leaked";
        assert_eq!(tail(coloured, &[]), ["error: token *** leaked"]);
        assert_eq!(plain("no escapes"), "no escapes");
        assert_eq!(plain("cut \u{1b}["), "cut ");
    }

    #[test]
    fn the_tail_is_thirty_lines_each_cut_short() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let lines = tail(&log, &[]);
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!((lines[0].as_str(), lines[29].as_str()), ("line 71", "line 100"));
        let long = tail(&"x".repeat(10_000), &[]);
        assert!(long[0].len() <= LINE_LIMIT + '…'.len_utf8());
        assert_eq!(tail("", &[]), Vec::<String>::new());
    }

    #[test]
    fn the_failed_step_is_the_first_that_exited_non_zero() {
        let failed = |steps: Value| {
            json!({ "status": {
                "podName": "ferry-api-1-build-pod",
                "conditions": [{ "type": "Succeeded", "status": "False", "reason": "Failed" }],
                "steps": steps,
            } })
        };
        let run = failed(json!([
            { "name": "clone", "container": "step-clone", "terminated": { "exitCode": 0 } },
            { "name": "build", "container": "step-build", "terminated": { "exitCode": 2 } },
            { "name": "push", "terminated": { "exitCode": 1 } },
        ]));
        assert_eq!(failed_step(&run), Some(("ferry-api-1-build-pod".into(), "step-build".into(), "build".into())));
        let unnamed_container = failed(json!([{ "name": "push", "terminated": { "exitCode": 1 } }]));
        assert_eq!(failed_step(&unnamed_container).unwrap().1, "step-push");
        assert_eq!(failed_step(&failed(json!([{ "name": "a", "running": {} }]))), None, "no step ended");
        let succeeded = json!({ "status": {
            "podName": "p", "conditions": [{ "type": "Succeeded", "status": "True" }],
            "steps": [{ "name": "a", "terminated": { "exitCode": 1 } }],
        } });
        assert_eq!(failed_step(&succeeded), None);
        assert_eq!(failed_step(&json!({})), None);
    }

    #[test]
    fn a_pipeline_run_s_task_runs_come_from_its_child_references() {
        let run = json!({ "status": { "childReferences": [
            { "kind": "TaskRun", "name": "r-clone" },
            { "kind": "CustomRun", "name": "r-approval" },
            { "kind": "TaskRun", "name": "r-build" },
        ] } });
        assert_eq!(child_task_runs(&run), ["r-clone", "r-build"]);
        assert_eq!(child_task_runs(&json!({})), Vec::<String>::new());
    }
}
