//! Ferry: Git host events to Kubernetes, as serverless functions.
//!
//! `domain` holds sans-IO types and pure decisions; `store` and `secrets` are
//! ports in domain terms with their adapters; `config` reads every variable
//! in one place; `context` builds the ports once for a composition root.

pub mod aws;
pub mod cluster;
pub mod config;
pub mod context;
pub mod domain;
pub mod files;
pub mod forge;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
pub mod net;
pub mod poll;
#[cfg(feature = "queue")]
pub mod queue;
pub mod report;
pub mod scheduled;
pub mod secrets;
pub mod store;
pub mod telemetry;
pub mod units;
pub mod usecase;

pub use config::Config;

/// Every Ferry binary allocates with mimalloc: parsing a push makes a few
/// hundred small allocations, and mimalloc takes verify+parse of a 25 KB
/// push from p99 60 µs to 54 µs (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub use context::Context;
