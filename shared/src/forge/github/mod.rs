//! GitHub: webhook payloads in, API calls out.

pub mod payload;

pub use payload::{ParseError, parse};
