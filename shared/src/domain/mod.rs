//! Sans-IO types: identifiers, the records Ferry keeps, time.

pub mod event;
pub mod ids;
pub mod queue;
pub mod records;
pub mod repair;
pub mod route;
pub mod signature;
pub mod tekton;
pub mod time;
pub mod tokens;
pub mod trust;

pub use ids::{DeliveryId, InstallationId, InvalidId, PrNumber, RefName, RepoName, Sha, Tag, UnitName};
pub use records::{
    Action, BodySeen, Cursor, CycleReport, Delivery, DeliveryPart, Installation, ListingTags, Login, OauthState,
    Outcome, PolledRef, PrState, Preview, PullRequest, Release, RepoMode, Repository, Run, RunStatus, UnitDecision,
};
pub use time::{Clock, SystemClock, Timestamp};
