//! The SAM template agrees with the code it deploys: every variable it sets
//! is one Ferry reads (and none holds a secret), every function's code is
//! the binary of a workspace package, its logs go to the group Lambda would
//! name, the table is the one the DynamoDB adapter expects, each function
//! has a role of its own granting only calls the adapters make, each
//! scheduled function's queue fans out to bounded workers whose failed items
//! are dead-lettered and alarmed, every checkov suppression says why, and
//! the alarms and the dashboard on Ferry's own metrics (namespace `Ferry`)
//! name only metrics the code emits, with their dimensions. (cfn-lint and
//! checkov themselves run in `scripts/lint-infra`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry::domain::Outcome;
use serde_yaml_ng::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).expect("the template is YAML")
}

fn resources(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, resource)| (name.as_str().unwrap().to_owned(), resource))
        .collect()
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(template).into_iter().filter(|(_, r)| r["Type"].as_str() == Some(kind)).collect()
}

/// A CloudFormation short-form intrinsic (`!Ref X`, `!GetAtt X.Arn`,
/// `!Sub "…"`), which YAML reads as a tagged value: its name and argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string().trim_start_matches('!').to_owned(), &tagged.value)),
        _ => None,
    }
}

/// The string argument of `!<function> …`.
fn argument<'a>(value: &'a Value, function: &str) -> &'a str {
    match intrinsic(value) {
        Some((name, argument)) if name == function => argument.as_str().unwrap(),
        _ => panic!("expected !{function}, found {value:?}"),
    }
}

/// A value that may be one item or a list of them.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

#[test]
fn every_variable_the_template_sets_is_one_ferry_reads_and_none_holds_a_secret() {
    let template = template();
    let known: BTreeSet<&str> = ferry::config::VARIABLES.iter().map(|(name, _)| *name).collect();
    let mut set = Vec::new();
    let globals = &template["Globals"]["Function"]["Environment"]["Variables"];
    set.extend(globals.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()));
    for (_, function) in of_type(&template, "AWS::Serverless::Function") {
        if let Some(variables) = function["Properties"]["Environment"]["Variables"].as_mapping() {
            set.extend(variables.keys().map(|k| k.as_str().unwrap().to_owned()));
        }
    }
    for needed in ["FERRY_TABLE", "FERRY_SECRET_PREFIX", "FERRY_CLUSTER", "FERRY_GITHUB_APP_ID"] {
        assert!(set.iter().any(|name| name == needed), "the template does not set {needed}");
    }
    for name in &set {
        assert!(known.contains(name.as_str()), "the template sets {name}, which Ferry does not read");
    }
    // Secret values live in Secrets Manager, never in the environment.
    for secret in ["FERRY_WEBHOOK_SECRET", "FERRY_ADMIN_TOKEN"] {
        assert!(!set.iter().any(|name| name == secret), "the template sets {secret}");
    }
    assert_eq!(argument(&globals["FERRY_TABLE"], "Ref"), "Table");
}

#[test]
fn each_function_deploys_the_binary_of_a_workspace_package_on_arm64() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Architectures"][0], "arm64");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["Tracing"], "Active");
    let mut binaries = Vec::new();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let code = function["Properties"]["CodeUri"].as_str().unwrap();
        // Relative to infra/, where the template is: cargo lambda's output.
        let binary = code
            .strip_prefix("../target/lambda/")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("{name}: CodeUri {code} is not ../target/lambda/<binary>/"));
        let package = binary.strip_prefix("ferry-").unwrap();
        let manifest = std::fs::read_to_string(root().join("functions").join(package).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: no package for {binary}: {e}"));
        assert!(manifest.contains(&format!("name = \"{binary}\"")), "{name}: functions/{package} is not {binary}");
        assert!(manifest.contains("[package.metadata.lambda.deploy]"), "{name}: {binary} has no deploy settings");
        binaries.push(binary.to_owned());
    }
    binaries.sort();
    assert_eq!(binaries, ["ferry-poller", "ferry-reconciler", "ferry-token-rotator", "ferry-webhook"]);
}

#[test]
fn each_function_logs_to_its_own_group_named_as_lambda_names_it() {
    let template = template();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let function_name = argument(&function["Properties"]["FunctionName"], "Sub");
        let group = argument(&function["Properties"]["LoggingConfig"]["LogGroup"], "Ref");
        let group_name = argument(&template["Resources"][group]["Properties"]["LogGroupName"], "Sub");
        assert_eq!(group_name, format!("/aws/lambda/{function_name}"), "{name}");
        let retention = &template["Resources"][group]["Properties"]["RetentionInDays"];
        assert_eq!(argument(retention, "Ref"), "LogRetentionDays", "{name}");
    }
}

#[test]
fn scheduled_functions_retry_set_failures_aside_and_run_one_cycle_at_a_time() {
    // A cycle with failures is its invocation's error, alarmed and done again
    // by the next cycle: Lambda does not retry it, nor keep a copy of it.
    let template = template();
    let mut schedules = Vec::new();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values().filter(|e| e["Type"] == "Schedule") {
            let properties = &event["Properties"];
            schedules.push(argument(&properties["Schedule"], "Ref").to_owned());
            assert!(properties["RetryPolicy"]["MaximumRetryAttempts"].is_u64(), "{name}");
            assert!(properties["RetryPolicy"]["MaximumEventAgeInSeconds"].is_u64(), "{name}");
            assert_eq!(argument(&properties["DeadLetterConfig"]["Arn"], "GetAtt"), "DeadLetters.Arn", "{name}");
            assert_eq!(function["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"], 0, "{name}");
            assert!(function["Properties"]["DeadLetterQueue"].is_null(), "{name}");
            // One cycle at a time, beside its queue's workers (an SQS event
            // source ignores reserved concurrency: it must leave room).
            let workers: u64 = events
                .values()
                .filter(|e| e["Type"] == "SQS")
                .map(|e| e["Properties"]["ScalingConfig"]["MaximumConcurrency"].as_u64().unwrap())
                .sum();
            let reserved = function["Properties"]["ReservedConcurrentExecutions"].as_u64();
            assert_eq!(reserved, Some(1 + workers), "{name}: one cycle at a time");
        }
    }
    schedules.sort();
    assert_eq!(schedules, ["PollSchedule", "ReconcileSchedule", "RotationSchedule"]);
    for schedule in &schedules {
        assert!(template["Parameters"][schedule.as_str()]["Default"].as_str().unwrap().starts_with("rate("));
    }
}

#[test]
fn the_table_is_the_one_the_dynamodb_adapter_expects() {
    let template = template();
    let resource = &template["Resources"]["Table"];
    assert_eq!(resource["DeletionPolicy"], "Retain");
    assert_eq!(resource["UpdateReplacePolicy"], "Retain");
    let table = &resource["Properties"];
    let attributes: BTreeSet<(&str, &str)> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| (a["AttributeName"].as_str().unwrap(), a["AttributeType"].as_str().unwrap()))
        .collect();
    let expected = [
        ("pk", "S"),
        ("sk", "S"),
        (ferry::store::LISTED_AS, "S"),
        (ferry::store::TIMELINE, "S"),
        (ferry::store::TIMELINE_AT, "N"),
    ];
    assert_eq!(attributes, BTreeSet::from(expected));
    let keys = |schema: &Value| -> Vec<(String, String)> {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .map(|k| (k["AttributeName"].as_str().unwrap().to_owned(), k["KeyType"].as_str().unwrap().to_owned()))
            .collect()
    };
    let pair =
        |hash: &str, range: &str| vec![(hash.to_owned(), "HASH".to_owned()), (range.to_owned(), "RANGE".to_owned())];
    assert_eq!(keys(&table["KeySchema"]), pair("pk", "sk"));
    let indexes = table["GlobalSecondaryIndexes"].as_sequence().unwrap();
    assert_eq!(indexes.len(), 2, "nothing else is indexed");
    assert_eq!(indexes[0]["IndexName"], ferry::store::LISTING_INDEX);
    assert_eq!(keys(&indexes[0]["KeySchema"]), pair(ferry::store::LISTED_AS, "pk"));
    assert_eq!(indexes[1]["IndexName"], ferry::store::TIMELINE_INDEX);
    assert_eq!(keys(&indexes[1]["KeySchema"]), pair(ferry::store::TIMELINE, ferry::store::TIMELINE_AT));
    assert_eq!(indexes[0]["Projection"]["ProjectionType"], "ALL");
    assert_eq!(indexes[1]["Projection"]["ProjectionType"], "KEYS_ONLY", "no delivery's event copied there");
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
}

#[test]
fn each_function_has_a_role_of_its_own_granting_only_calls_the_adapters_make() {
    // What shared/src/store/dynamo.rs and shared/src/secrets/secrets_manager.rs
    // call (a TransactWriteItems of puts is authorised as PutItem), and what
    // Lambda itself needs on the function's behalf.
    let callable: BTreeSet<&str> = BTreeSet::from([
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:CreateSecret",
        "secretsmanager:DeleteSecret",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "sqs:SendMessage",
        // A fanned-out function's SQS event source polls with its role.
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ]);
    // X-Ray has no resource-level permissions: the only grant on "*".
    let unscoped: BTreeSet<&str> = BTreeSet::from(["xray:PutTraceSegments", "xray:PutTelemetryRecords"]);
    let template = template();
    let mut roles = BTreeSet::new();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let properties = &function["Properties"];
        assert!(properties.get("Policies").is_none(), "{name}: SAM policies bring managed policies on \"*\"");
        let role = argument(&properties["Role"], "GetAtt").strip_suffix(".Arn").unwrap().to_owned();
        assert_eq!(template["Resources"][role.as_str()]["Type"], "AWS::IAM::Role", "{name}");
        assert!(roles.insert(role), "{name} shares its role");
    }
    assert_eq!(roles.len(), 4);
    for (name, role) in of_type(&template, "AWS::IAM::Role") {
        assert!(roles.contains(&name), "{name} belongs to no function");
        for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
                assert_eq!(statement["Effect"], "Allow");
                let actions: Vec<&str> =
                    one_or_many(&statement["Action"]).iter().map(|a| a.as_str().unwrap()).collect();
                let resources = one_or_many(&statement["Resource"]);
                assert!(!resources.is_empty(), "{name}: {statement:?}");
                for action in &actions {
                    assert!(!action.contains('*'), "{name} grants {action}");
                    if resources.iter().any(|r| *r == "*") {
                        assert!(unscoped.contains(action), "{name} grants {action} on every resource");
                    } else {
                        assert!(callable.contains(action), "{name} grants {action}, which no Ferry code calls");
                    }
                }
            }
        }
    }
}

#[test]
fn every_checkov_suppression_says_why() {
    let template = template();
    let mut suppressions = 0;
    for (name, resource) in resources(&template) {
        for skip in resource["Metadata"]["checkov"]["skip"].as_sequence().into_iter().flatten() {
            let comment = skip["comment"].as_str().unwrap_or_default();
            assert!(comment.len() > 40, "{name} skips {:?} without a reason", skip["id"]);
            suppressions += 1;
        }
    }
    assert!(suppressions > 0);
}

#[test]
fn the_functions_that_talk_to_the_cluster_are_the_user_rbac_yaml_grants() {
    let template = template();
    let mut principals: Vec<String> = of_type(&template, "AWS::EKS::AccessEntry")
        .into_iter()
        .map(|(name, entry)| {
            assert_eq!(entry["Properties"]["Username"], "ferry", "{name}");
            assert!(entry["Properties"].get("AccessPolicies").is_none(), "{name}: rights come from rbac.yaml alone");
            argument(&entry["Properties"]["PrincipalArn"], "GetAtt").to_owned()
        })
        .collect();
    principals.sort();
    assert_eq!(
        principals,
        ["PollerFunctionRole.Arn", "ReconcilerFunctionRole.Arn", "WebhookFunctionRole.Arn"],
        "webhook, poller and reconciler; the rotator never calls the cluster"
    );
    let rbac = std::fs::read_to_string(root().join("infra/kubernetes/rbac.yaml")).unwrap();
    assert!(rbac.contains("kind: User\n    name: ferry"), "rbac.yaml binds the user ferry");
}

#[test]
fn only_the_webhooks_the_tekton_sink_the_health_check_and_the_oauth_callback_are_open() {
    let template = template();
    let api = &template["Resources"]["Api"]["Properties"]["Auth"];
    assert_eq!(api["DefaultAuthorizer"], "AWS_IAM");
    let mut open = Vec::new();
    for (_, function) in of_type(&template, "AWS::Serverless::Function") {
        let Some(events) = function["Properties"]["Events"].as_mapping() else { continue };
        for event in events.values().filter(|e| e["Type"] == "HttpApi") {
            let route = &event["Properties"];
            let authorizer = route["Auth"]["Authorizer"].as_str().unwrap_or("AWS_IAM");
            if authorizer == "NONE" {
                open.push(format!("{} {}", route["Method"].as_str().unwrap(), route["Path"].as_str().unwrap()));
            } else {
                assert_eq!(authorizer, "AWS_IAM", "{route:?}");
            }
        }
    }
    open.sort();
    assert_eq!(
        open,
        [
            "GET /api/v0/github/oauth_callback",
            "GET /healthz",
            "POST /api/v0/github/repositories/{user}/{repo}/web_hook",
            "POST /tekton/events",
            "POST /webhook"
        ]
    );
}

/// A scheduled function fanned out over a queue (its planner sends the
/// items, the queue's events are its workers): the function, the variable
/// that tells it the queue, and the prefix of the queue's resources
/// (`<prefix>Queue`, `<prefix>DeadLetters`, `<prefix>DeadLettersAlarm`,
/// output `<prefix>QueueUrl`).
struct FanOut {
    function: &'static str,
    variable: &'static str,
    prefix: &'static str,
}

const FAN_OUTS: [FanOut; 3] = [
    FanOut { function: "ReconcilerFunction", variable: "FERRY_RECONCILE_QUEUE", prefix: "Reconcile" },
    FanOut { function: "TokenRotatorFunction", variable: "FERRY_ROTATE_QUEUE", prefix: "Rotate" },
    FanOut { function: "PollerFunction", variable: "FERRY_POLL_QUEUE", prefix: "Poll" },
];

/// What a worker's role needs on its own queue: the planner's sends (and a
/// worker's give-backs; SendMessageBatch is authorised as SendMessage), and
/// the event source mapping's polling.
const QUEUE_ACTIONS: [&str; 4] =
    ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"];

/// The function's SQS event sources' properties.
fn sqs_sources(function: &Value) -> Vec<&Value> {
    function["Properties"]["Events"]
        .as_mapping()
        .into_iter()
        .flat_map(|events| events.values())
        .filter(|e| e["Type"] == "SQS")
        .map(|e| &e["Properties"])
        .collect()
}

/// Each SQS statement of a role: its actions and the `!GetAtt` of each resource.
fn sqs_statements(role: &Value) -> Vec<(Vec<&str>, Vec<&str>)> {
    let mut found = Vec::new();
    for policy in role["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().into_iter().flatten() {
            let actions: Vec<&str> = one_or_many(&statement["Action"]).iter().filter_map(|a| a.as_str()).collect();
            if actions.iter().any(|a| a.starts_with("sqs:")) {
                let resources =
                    one_or_many(&statement["Resource"]).into_iter().map(|r| argument(r, "GetAtt")).collect();
                found.push((actions, resources));
            }
        }
    }
    found
}

/// The fan-out's queue reaches its function in bounded batches, each failed
/// item reported alone; an item stays invisible for six times the
/// function's timeout, is kept through a give-back's longest delay and its
/// three receives, then dead-lettered, and a dead letter raises an alarm;
/// the function is told the queue, has room for its cycle beside its
/// workers, and its role alone may use the queue.
fn assert_fans_out(name: &str) {
    let FanOut { function: function_name, variable, prefix } =
        *FAN_OUTS.iter().find(|f| f.function == name).expect("a fan-out");
    let template = template();
    let resources = &template["Resources"];
    let (queue_name, dead_letters_name) = (format!("{prefix}Queue"), format!("{prefix}DeadLetters"));
    let function = &resources[function_name];
    let properties = &function["Properties"];
    let context = format!("{function_name} / {queue_name}");

    // Told the queue: its scheduled cycle plans.
    assert_eq!(argument(&properties["Environment"]["Variables"][variable], "Ref"), queue_name, "{context}");
    let output = &template["Outputs"][format!("{prefix}QueueUrl").as_str()]["Value"];
    assert_eq!(argument(output, "Ref"), queue_name, "{context}: its URL is an output");

    // Its workers: bounded batches, bounded concurrency, failures one by one.
    let sources = sqs_sources(function);
    assert_eq!(sources.len(), 1, "{context}: one queue");
    let source = sources[0];
    assert_eq!(argument(&source["Queue"], "GetAtt"), format!("{queue_name}.Arn"), "{context}");
    let responses: Vec<&str> =
        one_or_many(&source["FunctionResponseTypes"]).iter().filter_map(|r| r.as_str()).collect();
    assert_eq!(responses, ["ReportBatchItemFailures"], "{context}: only the failed items come back");
    assert!((1..=10).contains(&source["BatchSize"].as_u64().unwrap()), "{context}");
    let workers = source["ScalingConfig"]["MaximumConcurrency"].as_u64().expect("bounded workers");
    assert!(workers >= 2, "{context}: SQS's least MaximumConcurrency is 2");
    assert_eq!(
        properties["ReservedConcurrentExecutions"].as_u64(),
        Some(1 + workers),
        "{context}: the scheduled cycle beside the workers, or they would be throttled"
    );

    // The queue: visibility, retention, redrive, encryption.
    let queue = &resources[queue_name.as_str()]["Properties"];
    let timeout = properties["Timeout"].as_u64().or(template["Globals"]["Function"]["Timeout"].as_u64()).unwrap();
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    assert!(visibility >= 6 * timeout, "{context}: AWS's advice, six times the function's timeout");
    assert_eq!(argument(&queue["RedrivePolicy"]["deadLetterTargetArn"], "GetAtt"), format!("{dead_letters_name}.Arn"));
    let receives = queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap();
    assert_eq!(receives, 3, "{context}");
    let retention = queue["MessageRetentionPeriod"].as_u64().unwrap();
    assert!(
        retention >= ferry::queue::MAX_DELAY.as_secs() + receives * visibility,
        "{context}: an item expires before its delay and its receives are over, and never reaches the dead letters"
    );
    assert_eq!(queue["SqsManagedSseEnabled"], true, "{context}");

    // The dead letters: kept longer (a dead letter keeps its first send's
    // age), encrypted, and taking only this queue's items.
    let dead_letters = &resources[dead_letters_name.as_str()]["Properties"];
    assert!(dead_letters["MessageRetentionPeriod"].as_u64().unwrap() > retention, "{context}");
    assert_eq!(dead_letters["SqsManagedSseEnabled"], true, "{context}");
    let allow = &dead_letters["RedriveAllowPolicy"];
    assert_eq!(allow["redrivePermission"], "byQueue", "{context}");
    let sources: Vec<&str> = one_or_many(&allow["sourceQueueArns"]).into_iter().map(|a| argument(a, "Sub")).collect();
    let source_name = argument(&queue["QueueName"], "Sub");
    assert_eq!(sources.len(), 1, "{context}");
    assert!(
        sources[0].starts_with("arn:${AWS::Partition}:sqs:") && sources[0].ends_with(&format!(":{source_name}")),
        "{context}: {dead_letters_name} names {} as its source",
        sources[0]
    );

    // A dead letter raises an alarm, as the other dead letters do.
    let alarm = &resources[format!("{dead_letters_name}Alarm").as_str()];
    assert_eq!(alarm["Type"], "AWS::CloudWatch::Alarm", "{context}");
    let alarm = &alarm["Properties"];
    assert_eq!(alarm["Namespace"], "AWS/SQS", "{context}");
    assert_eq!(alarm["MetricName"], "ApproximateNumberOfMessagesVisible", "{context}");
    assert_eq!(alarm["Dimensions"][0]["Name"], "QueueName", "{context}");
    assert_eq!(argument(&alarm["Dimensions"][0]["Value"], "GetAtt"), format!("{dead_letters_name}.QueueName"));
    assert_eq!(alarm["Threshold"], 0, "{context}");
    assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold", "{context}");
    let actions: Vec<&str> = one_or_many(&alarm["AlarmActions"]).into_iter().map(|a| argument(a, "Ref")).collect();
    assert_eq!(actions, ["AlarmTopic"], "{context}");

    assert_only_its_role_uses(&template, properties, &queue_name);
}

/// `function`'s role, and no other, may use `queue_name`, and on nothing else.
fn assert_only_its_role_uses(template: &Value, properties: &Value, queue_name: &str) {
    let own_role = argument(&properties["Role"], "GetAtt").strip_suffix(".Arn").unwrap();
    let queue_arn = format!("{queue_name}.Arn");
    for (role_name, role) in of_type(template, "AWS::IAM::Role") {
        let statements = sqs_statements(role);
        if role_name != own_role {
            for (_, on) in &statements {
                assert!(!on.contains(&queue_arn.as_str()), "{role_name} may use {queue_name}");
            }
            continue;
        }
        let mut granted: Vec<&str> = Vec::new();
        for (actions, on) in &statements {
            assert!(actions.iter().all(|a| a.starts_with("sqs:")), "{role_name}: {actions:?} beside SQS actions");
            assert_eq!(on, &[queue_arn.as_str()], "{role_name}: {actions:?} on its own queue only");
            granted.extend(actions);
        }
        granted.sort_unstable();
        assert_eq!(granted, QUEUE_ACTIONS, "{role_name} on {queue_name}");
    }
}

#[test]
fn every_sqs_event_source_is_a_fan_out_checked_below() {
    let template = template();
    let mut found: Vec<(String, String)> = Vec::new();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        for source in sqs_sources(function) {
            found.push((name.clone(), argument(&source["Queue"], "GetAtt").to_owned()));
        }
    }
    found.sort();
    let mut expected: Vec<(String, String)> =
        FAN_OUTS.iter().map(|f| (f.function.to_owned(), format!("{}Queue.Arn", f.prefix))).collect();
    expected.sort();
    assert_eq!(found, expected);
}

#[test]
fn the_reconcile_queue_fans_out_to_bounded_workers_and_dead_letters_alarm() {
    assert_fans_out("ReconcilerFunction");
}

#[test]
fn the_rotate_queue_fans_out_to_bounded_workers_and_dead_letters_alarm() {
    assert_fans_out("TokenRotatorFunction");
}

#[test]
fn the_poll_queue_fans_out_to_bounded_workers_and_dead_letters_alarm() {
    assert_fans_out("PollerFunction");
}

/// One of Ferry's metrics (shared/src/metrics.rs; namespace `Ferry`): its
/// name and its CloudWatch dimensions, exactly its labels (no function
/// name), each with the values it takes when they are a fixed set (empty:
/// open, e.g. an event's or an action's name).
struct Metric {
    name: &'static str,
    dimensions: &'static [(&'static str, &'static [&'static str])],
}

const OUTCOMES: &[&str] =
    &["processed", "duplicate", "ignored", "deferred", "failed", "dead", "received", "rejected", "unavailable"];
const CYCLES: &[&str] = &["reconcile", "rotate", "poll"];
const REPAIRS: &[&str] = &[
    "statuses",
    "previews_reported",
    "retried",
    "recovered",
    "dead",
    "redelivered",
    "missed_releases",
    "missed_pull_requests",
    "previews_removed",
];

const METRICS: &[Metric] = &[
    Metric { name: "ferry_deliveries", dimensions: &[("outcome", OUTCOMES)] },
    Metric { name: "ferry_deliveries_by_event", dimensions: &[("event", &[]), ("outcome", OUTCOMES)] },
    Metric { name: "ferry_actions", dimensions: &[("kind", &[])] },
    Metric { name: "ferry_intake_duration", dimensions: &[] },
    Metric { name: "ferry_tekton_events", dimensions: &[("what", &["ended", "not_an_end", "refused"])] },
    Metric { name: "ferry_reconciler_repairs", dimensions: &[("kind", REPAIRS)] },
    Metric { name: "ferry_reconciler_repositories", dimensions: &[] },
    Metric { name: "ferry_rotator_mints", dimensions: &[] },
    Metric { name: "ferry_rotator_fresh", dimensions: &[] },
    Metric { name: "ferry_poll_refs_due", dimensions: &[] },
    Metric { name: "ferry_poll_not_modified", dimensions: &[] },
    Metric { name: "ferry_poll_events_sent", dimensions: &[] },
    Metric { name: "ferry_poll_rate_limit_left", dimensions: &[("host", &[])] },
    Metric { name: "ferry_queued", dimensions: &[("cycle", CYCLES)] },
    Metric { name: "ferry_cycle_left", dimensions: &[("cycle", CYCLES)] },
    Metric { name: "ferry_cycle_failures", dimensions: &[("cycle", CYCLES)] },
];

fn metric(name: &str) -> &'static Metric {
    METRICS.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("{name} is not one of Ferry's metrics"))
}

/// `dimensions` (name, value; a value of `None` for a SEARCH schema's any)
/// are exactly `metric`'s, each value one it takes.
fn assert_dimensions(metric: &Metric, dimensions: &[(&str, Option<&str>)], context: &str) {
    let mut named: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    named.sort_unstable();
    let mut expected: Vec<&str> = metric.dimensions.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(named, expected, "{context}: {}'s dimensions", metric.name);
    for (name, value) in dimensions {
        let (_, values) = metric.dimensions.iter().find(|(n, _)| n == name).unwrap();
        if let Some(value) = value {
            assert!(
                values.is_empty() || values.contains(value),
                "{context}: {}: {name}={value} is never emitted",
                metric.name
            );
        }
    }
}

#[test]
fn the_metrics_table_is_the_one_the_code_emits() {
    assert_eq!(ferry::metrics::NAMESPACE, "Ferry");
    let mut emitted: Vec<&str> = ferry::metrics::COUNTERS.iter().map(|(name, _)| *name).collect();
    emitted.extend([ferry::metrics::INTAKE_DURATION, ferry::metrics::RATE_LIMIT_LEFT]);
    emitted.sort_unstable();
    let mut listed: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    listed.sort_unstable();
    assert_eq!(listed, emitted);
    // Every outcome a delivery can have, as the metrics spell it (a new
    // variant fails to compile here until it is in OUTCOMES).
    for outcome in [
        Outcome::Received,
        Outcome::Processed,
        Outcome::Duplicate,
        Outcome::Ignored,
        Outcome::Deferred,
        Outcome::Failed,
        Outcome::Dead,
        Outcome::Rejected,
    ] {
        match outcome {
            Outcome::Received
            | Outcome::Processed
            | Outcome::Duplicate
            | Outcome::Ignored
            | Outcome::Deferred
            | Outcome::Failed
            | Outcome::Dead
            | Outcome::Rejected => assert!(OUTCOMES.contains(&outcome.to_string().as_str()), "{outcome}"),
        }
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic_and_each_on_ferrys_metrics_names_one_with_its_dimensions() {
    let template = template();
    let alarms = of_type(&template, "AWS::CloudWatch::Alarm");
    let mut on_ferry = 0;
    for (name, alarm) in &alarms {
        let alarm = &alarm["Properties"];
        let actions: Vec<&str> = one_or_many(&alarm["AlarmActions"]).into_iter().map(|a| argument(a, "Ref")).collect();
        assert_eq!(actions, ["AlarmTopic"], "{name}");
        // A count of zero may be left out of its line: no data is no trouble.
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{name}");
        if alarm["Namespace"] != "Ferry" {
            continue;
        }
        on_ferry += 1;
        // Plain, or a !Sub naming a parameter's value.
        let description = &alarm["AlarmDescription"];
        let description = description.as_str().unwrap_or_else(|| argument(description, "Sub"));
        assert!(description.len() > 100, "{name} says what to do");
        let metric = metric(alarm["MetricName"].as_str().unwrap());
        let dimensions: Vec<(&str, Option<&str>)> = one_or_many(&alarm["Dimensions"])
            .into_iter()
            .map(|d| (d["Name"].as_str().unwrap(), Some(d["Value"].as_str().unwrap())))
            .collect();
        assert_dimensions(metric, &dimensions, name);
        assert!(
            alarm.get("Statistic").is_some() != alarm.get("ExtendedStatistic").is_some(),
            "{name}: a statistic or a percentile"
        );
        assert!(alarm.get("Unit").is_none(), "{name}: a unit other than the line's would never match");
    }
    assert!(on_ferry >= 6, "{on_ferry} alarms on Ferry's metrics");
}

/// How an alarm compares: with a number, or with a parameter (and its default).
enum Threshold {
    Fixed(f64),
    Parameter(&'static str, f64),
}

/// An alarm a person acts on: what it watches, and when it fires.
struct Watch {
    alarm: &'static str,
    metric: &'static str,
    dimension: Option<(&'static str, &'static str)>,
    statistic: &'static str,
    period: u64,
    evaluation_periods: u64,
    datapoints: u64,
    threshold: Threshold,
}

const WATCHES: &[Watch] = &[
    Watch {
        alarm: "DeadDeliveriesAlarm",
        metric: "ferry_reconciler_repairs",
        dimension: Some(("kind", "dead")),
        statistic: "Sum",
        period: 300,
        evaluation_periods: 1,
        datapoints: 1,
        threshold: Threshold::Fixed(0.0),
    },
    Watch {
        alarm: "FailedDeliveriesAlarm",
        metric: "ferry_deliveries",
        dimension: Some(("outcome", "failed")),
        statistic: "Sum",
        period: 300,
        evaluation_periods: 1,
        datapoints: 1,
        threshold: Threshold::Parameter("FailedDeliveriesThreshold", 5.0),
    },
    Watch {
        alarm: "UnavailableDeliveriesAlarm",
        metric: "ferry_deliveries",
        dimension: Some(("outcome", "unavailable")),
        statistic: "Sum",
        period: 300,
        evaluation_periods: 2,
        datapoints: 2,
        threshold: Threshold::Fixed(0.0),
    },
    Watch {
        alarm: "RotationFailuresAlarm",
        metric: "ferry_cycle_failures",
        dimension: Some(("cycle", "rotate")),
        statistic: "Sum",
        period: 1800,
        evaluation_periods: 1,
        datapoints: 1,
        threshold: Threshold::Fixed(0.0),
    },
    Watch {
        alarm: "ReconcilerFailuresAlarm",
        metric: "ferry_cycle_failures",
        dimension: Some(("cycle", "reconcile")),
        statistic: "Sum",
        period: 600,
        evaluation_periods: 2,
        datapoints: 2,
        threshold: Threshold::Fixed(0.0),
    },
    Watch {
        alarm: "PollFailuresAlarm",
        metric: "ferry_cycle_failures",
        dimension: Some(("cycle", "poll")),
        statistic: "Sum",
        period: 300,
        evaluation_periods: 3,
        datapoints: 3,
        threshold: Threshold::Fixed(0.0),
    },
    // GitHub gives up on a delivery at 10 s.
    Watch {
        alarm: "WebhookSlowAlarm",
        metric: "ferry_intake_duration",
        dimension: None,
        statistic: "p99",
        period: 300,
        evaluation_periods: 3,
        datapoints: 3,
        threshold: Threshold::Fixed(8.0),
    },
];

#[test]
fn the_alarms_on_ferrys_metrics_fire_when_a_person_has_something_to_do() {
    let template = template();
    for watch in WATCHES {
        let name = watch.alarm;
        let resource = &template["Resources"][name];
        assert_eq!(resource["Type"], "AWS::CloudWatch::Alarm", "{name}");
        let alarm = &resource["Properties"];
        assert_eq!(alarm["Namespace"], "Ferry", "{name}");
        assert_eq!(alarm["MetricName"], watch.metric, "{name}");
        let dimensions: Vec<(&str, &str)> = one_or_many(&alarm["Dimensions"])
            .into_iter()
            .map(|d| (d["Name"].as_str().unwrap(), d["Value"].as_str().unwrap()))
            .collect();
        assert_eq!(dimensions, watch.dimension.into_iter().collect::<Vec<_>>(), "{name}");
        let statistic = alarm["Statistic"].as_str().or(alarm["ExtendedStatistic"].as_str());
        assert_eq!(statistic, Some(watch.statistic), "{name}");
        assert_eq!(alarm["Period"].as_u64(), Some(watch.period), "{name}");
        assert_eq!(alarm["EvaluationPeriods"].as_u64(), Some(watch.evaluation_periods), "{name}");
        let datapoints = alarm["DatapointsToAlarm"].as_u64().unwrap_or(watch.evaluation_periods);
        assert_eq!(datapoints, watch.datapoints, "{name}");
        assert_eq!(alarm["ComparisonOperator"], "GreaterThanThreshold", "{name}");
        match watch.threshold {
            Threshold::Fixed(threshold) => assert_eq!(alarm["Threshold"].as_f64(), Some(threshold), "{name}"),
            Threshold::Parameter(parameter, default) => {
                assert_eq!(argument(&alarm["Threshold"], "Ref"), parameter, "{name}");
                let declared = &template["Parameters"][parameter];
                assert_eq!(declared["Type"], "Number", "{name}");
                assert_eq!(declared["Default"].as_f64(), Some(default), "{name}");
            }
        }
    }
}

/// `text` with each `${…}` of a `!Sub` replaced by `value(name)`.
fn substitute(text: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${") + start;
        out.push_str(&value(&rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// What lies between `open` and the next `close` in `text`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

const SAMPLE_REGION: &str = "eu-west-1";

#[test]
fn the_dashboard_shows_every_metric_of_ferrys_and_every_alarm() {
    let template = template();
    let dashboard = &template["Resources"]["Dashboard"];
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    assert_eq!(argument(&dashboard["Properties"]["DashboardName"], "Sub"), "${AWS::StackName}");
    let alarms: BTreeSet<String> =
        of_type(&template, "AWS::CloudWatch::Alarm").into_iter().map(|(name, _)| name).collect();
    let body = substitute(argument(&dashboard["Properties"]["DashboardBody"], "Sub"), |name| match name {
        "AWS::Region" => SAMPLE_REGION.to_owned(),
        "AWS::StackName" => "ferry".to_owned(),
        "AWS::AccountId" => "123456789012".to_owned(),
        "AWS::Partition" => "aws".to_owned(),
        attribute => {
            let alarm =
                attribute.strip_suffix(".Arn").unwrap_or_else(|| panic!("the dashboard names ${{{attribute}}}"));
            assert!(alarms.contains(alarm), "the dashboard names {alarm}, which is no alarm of the template");
            format!("arn:aws:cloudwatch:{SAMPLE_REGION}:123456789012:alarm:{alarm}")
        }
    });
    let body: serde_json::Value = serde_json::from_str(&body).expect("the dashboard's body is JSON");

    let mut shown: BTreeSet<&str> = BTreeSet::new();
    let mut listed: BTreeSet<String> = BTreeSet::new();
    for widget in body["widgets"].as_array().unwrap() {
        let properties = &widget["properties"];
        let title = properties["title"].as_str().unwrap_or_default();
        assert!(widget["width"].as_u64().unwrap() + widget["x"].as_u64().unwrap() <= 24, "{title}: within the grid");
        match widget["type"].as_str().unwrap() {
            "alarm" => {
                for arn in properties["alarms"].as_array().unwrap() {
                    let name = arn.as_str().unwrap().rsplit_once(":alarm:").unwrap().1;
                    assert!(listed.insert(name.to_owned()), "{name} is listed twice");
                }
            }
            "metric" => {
                assert_eq!(properties["region"], SAMPLE_REGION, "{title}");
                let rows = properties["metrics"].as_array().unwrap();
                assert!(!rows.is_empty(), "{title}");
                for row in rows {
                    let row = row.as_array().unwrap();
                    let context = format!("{title}: {row:?}");
                    if let Some(expression) = row[0]["expression"].as_str() {
                        // SEARCH('{Ferry,dimension,…} MetricName="…"', 'Sum', 300)
                        assert!(expression.starts_with("SEARCH('{Ferry"), "{context}");
                        let schema = between(expression, "{", "}").unwrap();
                        let name = between(expression, "MetricName=\"", "\"").expect("a metric name");
                        let metric = metric(name);
                        let dimensions: Vec<(&str, Option<&str>)> =
                            schema.split(',').skip(1).map(|d| (d.trim(), None)).collect();
                        assert_dimensions(metric, &dimensions, &context);
                        shown.insert(metric.name);
                    } else {
                        // ["Ferry", "name", dimension, value, …, {options}]
                        assert_eq!(row[0], "Ferry", "{context}: spelled out, not \".\"");
                        let metric = metric(row[1].as_str().unwrap());
                        let strings: Vec<&str> = row[2..].iter().map_while(|v| v.as_str()).collect();
                        assert!(strings.len().is_multiple_of(2), "{context}");
                        let dimensions: Vec<(&str, Option<&str>)> =
                            strings.chunks(2).map(|pair| (pair[0], Some(pair[1]))).collect();
                        assert_dimensions(metric, &dimensions, &context);
                        shown.insert(metric.name);
                    }
                }
            }
            other => panic!("{title}: a {other} widget"),
        }
    }
    assert_eq!(listed, alarms, "the alarm widget lists every alarm");
    let every: BTreeSet<&str> = METRICS.iter().map(|m| m.name).collect();
    assert_eq!(shown, every, "every metric has a graph");

    let url = argument(&template["Outputs"]["DashboardUrl"]["Value"], "Sub");
    assert!(url.starts_with("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}"));
    assert!(url.ends_with("#dashboards:name=${Dashboard}"), "{url}");
}

#[test]
fn alarm_email_is_optional_and_subscribes_to_the_alarm_topic_through_a_condition() {
    let template = template();
    let parameter = &template["Parameters"]["AlarmEmail"];
    assert_eq!(parameter["Type"], "String");
    assert_eq!(parameter["Default"], "", "no mail unless asked");
    // HasAlarmEmail: !Not [!Equals [!Ref AlarmEmail, ""]]
    let (not, operands) = intrinsic(&template["Conditions"]["HasAlarmEmail"]).expect("!Not");
    assert_eq!(not, "Not");
    let (equals, operands) = intrinsic(&operands[0]).expect("!Equals");
    assert_eq!(equals, "Equals");
    assert_eq!(argument(&operands[0], "Ref"), "AlarmEmail");
    assert_eq!(operands[1], "");
    let subscriptions = of_type(&template, "AWS::SNS::Subscription");
    assert_eq!(subscriptions.len(), 1);
    let (name, subscription) = &subscriptions[0];
    assert_eq!(subscription["Condition"], "HasAlarmEmail", "{name}");
    let properties = &subscription["Properties"];
    assert_eq!(argument(&properties["TopicArn"], "Ref"), "AlarmTopic", "{name}");
    assert_eq!(properties["Protocol"], "email", "{name}");
    assert_eq!(argument(&properties["Endpoint"], "Ref"), "AlarmEmail", "{name}");
    assert_eq!(argument(&template["Outputs"]["AlarmTopicArn"]["Value"], "Ref"), "AlarmTopic");
}

#[test]
fn the_log_groups_let_cloudwatch_extract_the_metrics_lines() {
    let template = template();
    for (name, group) in of_type(&template, "AWS::Logs::LogGroup") {
        let properties = &group["Properties"];
        // The Infrequent Access class extracts no embedded metrics.
        assert!(
            properties.get("LogGroupClass").is_none_or(|class| class == "STANDARD"),
            "{name}: only the Standard class extracts embedded metrics"
        );
        assert!(properties.get("DataProtectionPolicy").is_none(), "{name}: a masking policy over the metrics lines");
    }
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        // A metrics line has no "level": Lambda files it as INFO, and a
        // coarser ApplicationLogLevel would drop it.
        let level = function["Properties"]["LoggingConfig"]["ApplicationLogLevel"].as_str().unwrap_or("INFO");
        assert!(
            ["TRACE", "DEBUG", "INFO"].contains(&level),
            "{name}: ApplicationLogLevel {level} drops the metrics lines"
        );
    }
}
