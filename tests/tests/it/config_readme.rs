//! The README's configuration table and `Config` name the same variables.

use std::collections::BTreeSet;

#[test]
fn the_readme_configuration_table_lists_every_variable() {
    let readme = include_str!("../../../README.md");
    let documented: BTreeSet<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("FERRY_") || name.starts_with("AWS_"))
        .collect();
    let read: BTreeSet<&str> = ferry::config::VARIABLES.iter().map(|(name, _)| *name).collect();
    assert_eq!(documented, read, "README.md's configuration table and ferry::config::VARIABLES differ");
}
