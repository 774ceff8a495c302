//! Installation and repository tokens: what the secret store keeps, and the
//! pure decisions about when a new one must be minted (README.md,
//! "Tokens").

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Installation, InstallationId, RepoName, Timestamp};

/// The rotator mints when the stored token expires within this: with a run
/// every 30 minutes, a token always has more than 15 minutes left.
pub const ROTATE_WITHIN: Duration = Duration::from_secs(45 * 60);

/// Functions stop using a token with less life than this left.
pub const REFRESH_WITHIN: Duration = Duration::from_secs(10 * 60);

/// How long one rotation may hold an installation: others skip it meanwhile.
/// Longer than a mint can take (every GitHub call is bounded well below it).
pub const MINT_LEASE: Duration = Duration::from_secs(2 * 60);

/// Whose token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    Installation(InstallationId),
    /// Token mode: a personal access token stored for one repository.
    Repository(RepoName),
    /// A repository on another host, polled there: its `[[poll]]` entry
    /// names the host and the token (`report::hosted`).
    Host(RepoName),
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Installation(id) => write!(f, "installation {id}"),
            Credential::Repository(repo) => write!(f, "repository {repo}"),
            Credential::Host(repo) => write!(f, "{repo} on its own host"),
        }
    }
}

/// A token as the secret store keeps it: `{"token": …, "expires_at": …}`.
/// A repository token (a personal access token) may have no expiry.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub token: SecretString,
    pub expires_at: Option<Timestamp>,
}

impl StoredToken {
    /// The secret's value: JSON, the expiry in RFC 3339 as GitHub writes it.
    pub fn to_secret(&self) -> SecretString {
        let mut value = serde_json::json!({ "token": self.token.expose_secret() });
        if let Some(at) = self.expires_at {
            value["expires_at"] = at.to_rfc3339().into();
        }
        SecretString::from(value.to_string())
    }

    /// Reads a secret's value: that JSON, or a bare token put there by hand.
    /// The problem never quotes the value.
    pub fn from_secret(value: &SecretString) -> Result<Self, String> {
        let text = value.expose_secret().trim();
        if !text.starts_with('{') {
            if text.is_empty() || text.contains(char::is_whitespace) {
                return Err("holds neither {\"token\", \"expires_at\"} JSON nor a bare token".into());
            }
            return Ok(Self { token: SecretString::from(text.to_owned()), expires_at: None });
        }
        #[derive(serde::Deserialize)]
        struct Shape {
            token: String,
            expires_at: Option<String>,
        }
        let shape: Shape = serde_json::from_str(text).map_err(|e| {
            format!("is not {{\"token\", \"expires_at\"}} JSON (line {}, column {})", e.line(), e.column())
        })?;
        let expires_at = shape.expires_at.as_deref().map(Timestamp::parse_rfc3339).transpose()?;
        Ok(Self { token: SecretString::from(shape.token), expires_at })
    }

    /// Still worth handing out at `now`: no expiry, or more than
    /// [`REFRESH_WITHIN`] of life left.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now.until(at) > REFRESH_WITHIN)
    }
}

/// What one rotation does for one installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Mint,
    /// The stored token lives long enough.
    Fresh {
        expires_at: Timestamp,
    },
    /// A suspended installation gets no tokens.
    Suspended,
    /// Another rotation is minting for it right now.
    Leased {
        until: Timestamp,
    },
}

/// Whether to mint for `installation`, given when its stored token expires
/// (`None`: there is none, or it cannot be read) and the margin wanted.
pub fn rotation(
    installation: &Installation,
    stored_expiry: Option<Timestamp>,
    now: Timestamp,
    within: Duration,
) -> Rotation {
    if installation.suspended {
        return Rotation::Suspended;
    }
    if let Some(expires_at) = stored_expiry.filter(|at| now.until(*at) > within) {
        return Rotation::Fresh { expires_at };
    }
    match installation.minting_until {
        Some(until) if until > now => Rotation::Leased { until },
        _ => Rotation::Mint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::InstallationId;

    fn installation(suspended: bool, minting_until: Option<i64>) -> Installation {
        Installation {
            suspended,
            minting_until: minting_until.map(Timestamp::from_unix),
            ..Installation::new(InstallationId::new(1), "acme", "all")
        }
    }

    #[test]
    fn rotation_covers_every_case() {
        let now = 10_000;
        let min = 60;
        // (suspended, lease until, stored expiry, expected)
        let cases: [(bool, Option<i64>, Option<i64>, Rotation); 11] = [
            (false, None, None, Rotation::Mint),
            (false, None, Some(now - 1), Rotation::Mint),
            (false, None, Some(now + 10 * min), Rotation::Mint),
            (false, None, Some(now + 45 * min), Rotation::Mint),
            (
                false,
                None,
                Some(now + 45 * min + 1),
                Rotation::Fresh { expires_at: Timestamp::from_unix(now + 45 * min + 1) },
            ),
            (
                false,
                Some(now + 30),
                Some(now + 60 * min),
                Rotation::Fresh { expires_at: Timestamp::from_unix(now + 60 * min) },
            ),
            (false, Some(now + 30), Some(now + 5 * min), Rotation::Leased { until: Timestamp::from_unix(now + 30) }),
            (false, Some(now + 30), None, Rotation::Leased { until: Timestamp::from_unix(now + 30) }),
            (false, Some(now), None, Rotation::Mint),
            (false, Some(now - 300), Some(now + 5 * min), Rotation::Mint),
            (true, None, None, Rotation::Suspended),
        ];
        for (suspended, lease, expiry, expected) in cases {
            let got = rotation(
                &installation(suspended, lease),
                expiry.map(Timestamp::from_unix),
                Timestamp::from_unix(now),
                ROTATE_WITHIN,
            );
            assert_eq!(got, expected, "suspended {suspended}, lease {lease:?}, expiry {expiry:?}");
        }
        let suspended_and_fresh = rotation(
            &installation(true, None),
            Some(Timestamp::from_unix(now + 3600)),
            Timestamp::from_unix(now),
            ROTATE_WITHIN,
        );
        assert_eq!(suspended_and_fresh, Rotation::Suspended);
    }

    #[test]
    fn a_stored_token_round_trips_and_never_shows_in_errors() {
        let stored = StoredToken {
            token: SecretString::from("ghs_16C7e42F292c6912E7710c838347Ae178B4a".to_owned()),
            expires_at: Some(Timestamp::parse_rfc3339("2026-11-22T12:00:00Z").unwrap()),
        };
        let secret = stored.to_secret();
        assert_eq!(
            secret.expose_secret(),
            r#"{"expires_at":"2026-11-22T12:00:00Z","token":"ghs_16C7e42F292c6912E7710c838347Ae178B4a"}"#
        );
        let back = StoredToken::from_secret(&secret).unwrap();
        assert_eq!(back.token.expose_secret(), stored.token.expose_secret());
        assert_eq!(back.expires_at, stored.expires_at);
        assert!(!format!("{back:?}").contains("ghs_"));

        let bare = StoredToken::from_secret(&SecretString::from("ghp_personal".to_owned())).unwrap();
        assert_eq!((bare.token.expose_secret(), bare.expires_at), ("ghp_personal", None));

        for broken in [
            r#"{"token": "ghs_secretvalue", "expires_at": 5"#,
            r#"{"token":"ghs_secretvalue","expires_at":"soon"}"#,
            "two words",
            "",
        ] {
            let problem = StoredToken::from_secret(&SecretString::from(broken.to_owned())).unwrap_err();
            assert!(!problem.contains("ghs_secretvalue") && !problem.contains("two words"), "{problem}");
        }
    }

    #[test]
    fn a_token_is_usable_until_ten_minutes_are_left() {
        let now = Timestamp::from_unix(1_000);
        let token = |left: Option<u64>| StoredToken {
            token: SecretString::from("t".to_owned()),
            expires_at: left.map(|s| now.plus(Duration::from_secs(s))),
        };
        assert!(token(None).usable_at(now));
        assert!(token(Some(601)).usable_at(now));
        assert!(!token(Some(600)).usable_at(now));
        assert!(!token(Some(0)).usable_at(now));
    }
}
