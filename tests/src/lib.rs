//! Helpers for the workspace integration tests: the AWS API emulator, each
//! test's own table or prefix, fault injection, and record builders.

pub mod builders;
pub mod embedded;
pub mod emf;
pub mod emulator;
pub mod events;
pub mod git_hosts;
pub mod github;
pub mod kube_api;
pub mod lambda;
pub mod logs;
pub mod openapi;
pub mod providers;
pub mod throttle;
pub mod webhook;

/// One contract suite, run against two adapters: for each case, a test in
/// module `$a` and one in `$b`, each on a fresh store from its expression,
/// which yields `(guard, store)`; the guard (a temporary dir, say) lives as
/// long as the test.
#[macro_export]
macro_rules! contract_suite {
    ($a:ident => $make_a:expr, $b:ident => $make_b:expr; $($case:ident),* $(,)?) => {
        mod $a {
            $(#[tokio::test]
            async fn $case() {
                let (_guard, store) = $make_a;
                super::$case(&store).await;
            })*
        }
        mod $b {
            $(#[tokio::test]
            async fn $case() {
                let (_guard, store) = $make_b;
                super::$case(&store).await;
            })*
        }
    };
}
