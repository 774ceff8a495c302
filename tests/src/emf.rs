//! CloudWatch's Embedded Metric Format, read as CloudWatch reads it: each
//! line a function writes is checked against the format's specification
//! (the root `_aws` member, its `Timestamp` and `CloudWatchMetrics`
//! directives, each directive's `Namespace`, `Dimensions` and `Metrics`, and
//! the root members they name), so a line CloudWatch would drop fails here.

use serde_json::Value;

/// The units a metric definition may name.
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The EMF documents among `output`'s lines (every line that is a JSON
/// object with `_aws`), each checked against the specification.
pub fn documents(output: &str) -> Vec<Value> {
    let documents: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("_aws").is_some())
        .collect();
    for document in &documents {
        if let Err(problem) = check(document) {
            panic!("not an EMF document CloudWatch takes: {problem}\n{document}");
        }
    }
    documents
}

/// What the specification requires of one document.
pub fn check(document: &Value) -> Result<(), String> {
    let aws = document["_aws"].as_object().ok_or("`_aws` is not an object")?;
    let timestamp = aws.get("Timestamp").and_then(Value::as_u64).ok_or("`_aws.Timestamp` is not a whole number")?;
    if timestamp < 1_000_000_000_000 {
        return Err(format!("`_aws.Timestamp` {timestamp} is not in milliseconds since the epoch"));
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no `CloudWatchMetrics` array")?;
    for directive in directives {
        let namespace = directive["Namespace"].as_str().ok_or("a directive has no `Namespace`")?;
        if namespace.trim().is_empty() || namespace.len() > 1024 {
            return Err(format!("namespace {namespace:?}"));
        }
        for set in directive["Dimensions"].as_array().ok_or("a directive has no `Dimensions` array")? {
            let set = set.as_array().ok_or("a dimension set is not an array")?;
            if set.len() > 30 {
                return Err("a dimension set of more than 30".into());
            }
            for name in set {
                let name = name.as_str().ok_or("a dimension name is not a string")?;
                let value = document[name].as_str().ok_or(format!("dimension {name} has no string member"))?;
                if value.is_empty() || value.len() > 1024 {
                    return Err(format!("dimension {name}'s value {value:?}"));
                }
            }
        }
        let metrics = directive["Metrics"].as_array().ok_or("a directive has no `Metrics` array")?;
        if metrics.len() > 100 {
            return Err("more than 100 metrics in one directive".into());
        }
        for metric in metrics {
            check_metric(document, metric)?;
        }
    }
    Ok(())
}

fn check_metric(document: &Value, metric: &Value) -> Result<(), String> {
    let name = metric["Name"].as_str().filter(|n| (1..=1024).contains(&n.len())).ok_or("a metric without a `Name`")?;
    if let Some(unit) = metric.get("Unit") {
        let unit = unit.as_str().ok_or("a `Unit` that is not a string")?;
        if !UNITS.contains(&unit) {
            return Err(format!("{name}: unit {unit:?} is not CloudWatch's"));
        }
    }
    if let Some(resolution) = metric.get("StorageResolution")
        && ![1, 60].contains(&resolution.as_u64().unwrap_or(0))
    {
        return Err(format!("{name}: storage resolution {resolution}"));
    }
    match &document[name] {
        Value::Number(_) => Ok(()),
        Value::Array(values) if values.len() <= 100 && values.iter().all(Value::is_number) => Ok(()),
        other => Err(format!("{name}'s value {other} is neither a number nor up to 100 numbers")),
    }
}

/// The value of metric `name` in the documents whose dimension set is
/// exactly `dimensions` (name, value), as a CloudWatch alarm on them sees it.
pub fn sum(documents: &[Value], name: &str, dimensions: &[(&str, &str)]) -> f64 {
    let mut wanted: Vec<&str> = dimensions.iter().map(|(key, _)| *key).collect();
    wanted.sort_unstable();
    let exact = |d: &Value| {
        let mut set: Vec<&str> = d["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            .as_array()
            .map_or_else(Vec::new, |set| set.iter().filter_map(Value::as_str).collect());
        set.sort_unstable();
        set == wanted
    };
    documents
        .iter()
        .filter(|d| exact(d) && dimensions.iter().all(|(key, value)| d[*key] == *value))
        .filter_map(|d| match &d[name] {
            Value::Number(n) => n.as_f64(),
            Value::Array(values) => Some(values.iter().filter_map(Value::as_f64).sum()),
            _ => None,
        })
        .sum()
}

/// The metrics each document defines, by name.
pub fn names(documents: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = documents
        .iter()
        .flat_map(|d| d["_aws"]["CloudWatchMetrics"].as_array().cloned().unwrap_or_default())
        .flat_map(|directive| directive["Metrics"].as_array().cloned().unwrap_or_default())
        .filter_map(|metric| metric["Name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
}
