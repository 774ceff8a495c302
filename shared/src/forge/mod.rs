//! Git hosts: what they send us and what we ask of them.

pub mod github;
