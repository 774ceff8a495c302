//! All workspace integration tests, one binary (one link of the AWS SDK).

mod config_readme;
mod secrets_contract;
mod state_contract;
