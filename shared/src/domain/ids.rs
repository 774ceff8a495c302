//! Identifiers as validated newtypes: once parsed, always valid, so keys
//! built from them can never collide or carry a separator.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Input that is not a valid identifier of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {problem}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub problem: &'static str,
}

fn invalid(kind: &'static str, value: &str, problem: &'static str) -> InvalidId {
    // Cut what is echoed back: this may be attacker-chosen input.
    let value: String = value.chars().take(80).collect();
    InvalidId { kind, value, problem }
}

/// A string identifier: `parse` validates, `as_str` reads, serde goes through `parse`.
macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(problem) => Err(invalid($kind, &value, problem)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn bounded(value: &str, max: usize) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.len() > max {
        return Err("is too long");
    }
    Ok(())
}

fn git_name(value: &str) -> Result<(), &'static str> {
    bounded(value, 255)?;
    if value.chars().any(|c| c.is_control() || c == ' ' || c == '~' || c == '^' || c == ':' || c == '\\') {
        return Err("contains a character Git does not allow in a ref");
    }
    if value.contains("..") || value.starts_with('/') || value.ends_with('/') || value.ends_with(".lock") {
        return Err("is not a valid Git ref name");
    }
    Ok(())
}

string_id!(
    /// `X-GitHub-Delivery`: the GUID GitHub gives each delivery.
    DeliveryId,
    "delivery id",
    |v| {
        bounded(v, 100)?;
        if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            Ok(())
        } else {
            Err("may hold only letters, digits and '-'")
        }
    }
);

string_id!(
    /// A commit SHA: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
    Sha,
    "commit sha",
    |v| {
        if v.len() != 40 && v.len() != 64 {
            return Err("must be 40 or 64 hex digits");
        }
        if v.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) {
            Ok(())
        } else {
            Err("must be lowercase hex")
        }
    }
);

impl Sha {
    /// The 7-character abbreviation Git and GitHub show.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    /// All zeros: what GitHub sends as `before` of a new ref and `after` of a deleted one.
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

string_id!(
    /// A Git ref as tracked or pushed: `refs/heads/main`, `main`, `refs/tags/v1`.
    RefName,
    "ref",
    git_name
);

string_id!(
    /// A release's tag name.
    Tag,
    "tag",
    git_name
);

string_id!(
    /// A unit of `.ferry.toml`: a table name, used in labels and status contexts.
    UnitName,
    "unit name",
    |v| {
        bounded(v, 63)?;
        if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            Ok(())
        } else {
            Err("may hold only letters, digits, '-' and '_'")
        }
    }
);

/// A GitHub App installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstallationId(u64);

impl InstallationId {
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for InstallationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A pull request's number within its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrNumber(u64);

impl PrNumber {
    pub const fn new(number: u64) -> Self {
        Self(number)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `owner/name` of a repository, validated by GitHub's rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    full: String,
    slash: usize,
}

impl RepoName {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidId> {
        let full = value.into();
        let Some((owner, name)) = full.split_once('/') else {
            return Err(invalid("repository", &full, "must be owner/name"));
        };
        let part = |p: &str| {
            bounded(p, 100).is_ok()
                && p != "."
                && p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !part(owner) || !part(name) {
            return Err(invalid("repository", &full, "owner and name may hold only letters, digits, '-', '_' and '.'"));
        }
        let slash = owner.len();
        Ok(Self { full, slash })
    }

    pub fn owner(&self) -> &str {
        &self.full[..self.slash]
    }

    /// Whether GitHub could have this owner: no GitHub login holds a `.` or
    /// starts with `_`, which the names of other hosts' repositories do.
    pub fn is_githubs(&self) -> bool {
        !self.owner().contains('.') && !self.owner().starts_with('_')
    }

    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    pub fn full_name(&self) -> &str {
        &self.full
    }
}

impl TryFrom<String> for RepoName {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, InvalidId> {
        Self::parse(value)
    }
}

impl From<RepoName> for String {
    fn from(repo: RepoName) -> String {
        repo.full
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_github_rules() {
        let repo = RepoName::parse("acme-corp/api.v2").unwrap();
        assert_eq!((repo.owner(), repo.name()), ("acme-corp", "api.v2"));
        for bad in ["", "acme", "acme/", "/api", "a/b/c", "acme/..", "acme/a#b", "ac me/api"] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn shas_are_full_lowercase_hex() {
        let sha = Sha::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(sha.short(), "0123456");
        assert!(Sha::parse("0123456").is_err());
        assert!(Sha::parse("0123456789ABCDEF0123456789abcdef01234567").is_err());
        assert!(Sha::parse("g123456789abcdef0123456789abcdef01234567").is_err());
    }

    #[test]
    fn refs_reject_what_git_rejects() {
        assert!(RefName::parse("refs/heads/release/1.x").is_ok());
        for bad in ["", "a..b", "/main", "main/", "ma in", "x.lock", "a:b"] {
            assert!(RefName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn delivery_ids_and_units_carry_no_separator() {
        assert!(DeliveryId::parse("72d3162e-cc78-11e3-81ab-4c9367dc0958").is_ok());
        assert!(DeliveryId::parse("a#b").is_err());
        assert!(UnitName::parse("api_v2-x").is_ok());
        assert!(UnitName::parse("api#x").is_err());
    }

    #[test]
    fn invalid_input_is_cut_when_echoed() {
        let err = DeliveryId::parse("#".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 200);
    }

    #[test]
    fn ids_round_trip_through_serde() {
        let repo: RepoName = serde_json::from_str("\"o/r\"").unwrap();
        assert_eq!(serde_json::to_string(&repo).unwrap(), "\"o/r\"");
        assert!(serde_json::from_str::<RepoName>("\"nope\"").is_err());
    }
}
