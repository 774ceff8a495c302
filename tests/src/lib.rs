//! Helpers for the workspace integration tests: the AWS API emulator, each
//! test's own table or prefix, fault injection, and record builders.

pub mod builders;
pub mod emulator;
pub mod events;
pub mod throttle;
pub mod webhook;
