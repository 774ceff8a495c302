//! GitHub: webhook payloads in, API calls out.

pub mod api;
pub mod app;
pub mod events;
pub(crate) mod jwt;
pub mod listing;
pub mod manifest;
pub mod payload;
pub mod rest;

pub use api::GithubApi;
pub use app::{AppKey, GithubApp, KeySource, NoApp, app_jwt};
pub use payload::{ParseError, parse};
pub use rest::GithubForge;
