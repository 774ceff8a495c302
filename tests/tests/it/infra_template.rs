//! The SAM template agrees with the code it deploys: every variable it sets
//! is one Ferry reads, every function's code is the binary of that name, the
//! table is the one the DynamoDB adapter expects, no IAM statement grants a
//! wildcard action, and every checkov suppression says why. (cfn-lint and
//! checkov themselves run in `scripts/lint-infra`.)

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

fn template() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).expect("the template is YAML")
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

#[test]
fn every_variable_the_template_sets_is_one_ferry_reads() {
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
    assert!(set.contains(&"FERRY_TABLE".to_owned()) && set.contains(&"FERRY_SECRET_PREFIX".to_owned()));
    for name in &set {
        assert!(known.contains(name.as_str()), "the template sets {name}, which Ferry does not read");
    }
}

#[test]
fn each_function_deploys_its_own_binary_on_arm64() {
    let template = template();
    assert_eq!(template["Globals"]["Function"]["Runtime"], "provided.al2023");
    assert_eq!(template["Globals"]["Function"]["Architectures"][0], "arm64");
    let mut binaries: Vec<String> = of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(_, f)| f["Properties"]["CodeUri"].as_str().unwrap().to_owned())
        .collect();
    binaries.sort();
    assert_eq!(
        binaries,
        [
            "../target/lambda/ferry-poller/",
            "../target/lambda/ferry-reconciler/",
            "../target/lambda/ferry-token-rotator/",
            "../target/lambda/ferry-webhook/"
        ]
    );
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        let scheduled = function["Properties"]["Events"]["Every"]["Type"] == "Schedule";
        if scheduled {
            let every = &function["Properties"]["Events"]["Every"]["Properties"];
            assert!(every["RetryPolicy"].is_mapping() && every["DeadLetterConfig"].is_mapping(), "{name}");
            assert_eq!(function["Properties"]["ReservedConcurrentExecutions"], 1, "{name}: one cycle at a time");
        }
    }
}

#[test]
fn the_table_is_the_one_the_dynamodb_adapter_expects() {
    let template = template();
    let table = &template["Resources"]["Table"]["Properties"];
    let keys: Vec<(&str, &str)> = table["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| (k["AttributeName"].as_str().unwrap(), k["KeyType"].as_str().unwrap()))
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    let index = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"], ferry::store::LISTING_INDEX);
    assert_eq!(index["KeySchema"][0]["AttributeName"], ferry::store::LISTED_AS);
    assert_eq!(index["KeySchema"][1]["AttributeName"], "pk");
    assert_eq!(index["Projection"]["ProjectionType"], "ALL");
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(template["Resources"]["Table"]["DeletionPolicy"], "Retain");
}

#[test]
fn no_statement_grants_a_wildcard_action_and_resources_are_named() {
    let template = template();
    for (name, function) in of_type(&template, "AWS::Serverless::Function") {
        for policy in function["Properties"]["Policies"].as_sequence().unwrap() {
            let Some(statements) = policy["Statement"].as_sequence() else { continue };
            for statement in statements {
                for action in statement["Action"].as_sequence().unwrap() {
                    let action = action.as_str().unwrap();
                    assert!(!action.contains('*'), "{name} grants {action}");
                }
                assert_ne!(statement["Resource"], "*", "{name}: {statement:?}");
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
            format!("{:?}", entry["Properties"]["PrincipalArn"])
        })
        .collect();
    principals.sort();
    assert_eq!(principals.len(), 3, "webhook, poller and reconciler; the rotator never calls the cluster");
    let rbac =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/kubernetes/rbac.yaml"))
            .unwrap();
    assert!(rbac.contains("kind: User\n    name: ferry"), "rbac.yaml binds the user ferry");
}
