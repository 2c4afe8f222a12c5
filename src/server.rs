//! A running server: database, policy, projectors and HTTP listener, stopped together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use aggregates::application::ApplicationServices;
use aggregates::policy::{Policy, PolicyBook, bundled};
use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::database::Database;
use crate::http::{self, AppState};
use crate::ledger::{LedgerSettings, Sealer};
use crate::store::ApplicationStore;

/// Loads the policy document at `path`, or the bundled one when `path` is `None`.
///
/// # Errors
/// Fails when the file cannot be read or the policy is invalid.
pub fn load_policy(path: Option<&Path>) -> anyhow::Result<PolicyBook> {
    let policy = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy {} failed", path.display()))?;
            let calendar = path.with_file_name("holidays-cn.csv");
            let calendar = std::fs::read_to_string(&calendar).with_context(|| {
                format!(
                    "reading the calendar {} beside the policy failed",
                    calendar.display()
                )
            })?;
            Policy::load(&text, &calendar)
        }
        None => Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV),
    }
    .context("loading the policy failed")?;
    tracing::info!(version = policy.version, "policy loaded");
    Ok(PolicyBook::new(policy))
}

/// Days before the working-day calendar ends from which the server warns. A promised date or
/// an exchange deadline lies several working days after its start, and one past the calendar's
/// last day is rejected (`date_outside_calendar` for applications and record checks,
/// `calendar_year_not_covered` for exchange requests).
pub const CALENDAR_NOTICE_DAYS: i64 = 60;

/// How far the policy's working-day calendar reaches from today.
#[derive(Debug, serde::Serialize)]
pub struct CalendarCoverage {
    /// The last day of the unbroken run of covered years from today; `None` when this year
    /// itself is not covered.
    pub covered_until: Option<NaiveDate>,
    /// Days from today to `covered_until`.
    pub days_left: Option<i64>,
    /// A warning, present when fewer than [`CALENDAR_NOTICE_DAYS`] remain: what stops working
    /// and the fix.
    pub warning: Option<String>,
}

/// Returns how far the calendar of `policy` reaches from `today`, with a warning near its end.
pub fn calendar_coverage(policy: &Policy, today: NaiveDate) -> CalendarCoverage {
    let covered_until = policy.calendar.covered_until(today);
    let days_left = covered_until.map(|until| (until - today).num_days());
    let fix = |year: i32| {
        format!(
            "add the State Council holiday notice for {year} to the policy calendar (policy/holidays-cn.csv)"
        )
    };
    let warning = match (covered_until, days_left) {
        (Some(_), Some(days)) if days >= CALENDAR_NOTICE_DAYS => None,
        (Some(until), _) => Some(format!(
            "the working-day calendar ends on {until}: applications, record checks and exchange requests whose promised date or deadline falls after it are rejected (date_outside_calendar, calendar_year_not_covered); {}",
            fix(until.year() + 1)
        )),
        (None, _) => Some(format!(
            "the working-day calendar does not cover {}: every application, record check and exchange request is rejected (date_outside_calendar, calendar_year_not_covered); {}",
            today.year(),
            fix(today.year())
        )),
    };
    CalendarCoverage {
        covered_until,
        days_left,
        warning,
    }
}

/// Settings of a running server beyond its database and policy.
pub struct ServerOptions {
    /// How many days before today a command may date its decision, approval, issuance,
    /// refusal or withdrawal (paper applications entered later). Dates after today are
    /// always rejected.
    pub backdate_days: u32,
    /// Key, checkpoint directory and interval of the ledger sealer; without them the server
    /// does not seal.
    pub ledger: Option<LedgerSettings>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            backdate_days: 7,
            ledger: None,
        }
    }
}

/// A server started on a database; [`RunningServer::stop`] shuts it down in order.
pub struct RunningServer {
    pub address: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    http: JoinHandle<anyhow::Result<()>>,
    projector: JoinHandle<()>,
    supervision: JoinHandle<()>,
    inspections: JoinHandle<()>,
    /// The sealer and its own stop signal, sent after the HTTP server has drained.
    sealer: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl RunningServer {
    /// Binds `listen` (port 0 picks a free port), starts the projectors and serves the API,
    /// with the default options.
    ///
    /// # Errors
    /// Fails when the address cannot be bound.
    pub async fn start(
        database: &Database,
        policies: PolicyBook,
        listen: SocketAddr,
    ) -> anyhow::Result<RunningServer> {
        Self::start_with(database, policies, listen, ServerOptions::default()).await
    }

    /// Binds `listen` (port 0 picks a free port), starts the projectors and serves the API;
    /// given ledger settings, also seals the ledger in the background.
    ///
    /// # Errors
    /// Fails when the address cannot be bound, when the events carry transaction ids the
    /// server has not reached, or when the database's ledger is behind or disagrees with the
    /// exported checkpoints.
    pub async fn start_with(
        database: &Database,
        policies: PolicyBook,
        listen: SocketAddr,
        options: ServerOptions,
    ) -> anyhow::Result<RunningServer> {
        check_transaction_ids(&database.pool).await?;
        let policy = policies.current();
        if let Some(warning) = calendar_coverage(policy, http::today_in_china()).warning {
            tracing::warn!(version = policy.version, "{warning}");
        }
        // Check the ledger before binding, so that a restored old backup never serves.
        let sealer = match options.ledger {
            Some(settings) => Some(Sealer::open(&database.pool, settings).await?),
            None => None,
        };
        let services = ApplicationServices {
            policies: Arc::new(policies),
        };
        let mut state = AppState::new(
            database.pool.clone(),
            ApplicationStore::new(&database.pool, services),
        )
        .with_backdate_days(options.backdate_days);
        let (failure, failure_seen) = watch::channel(None);
        if sealer.is_some() {
            state = state.with_ledger_failure(failure_seen);
        }
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen} failed"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let projector = tokio::spawn(projections::projector::run(
            database.pool.clone(),
            stopped.clone(),
        ));
        let supervision = tokio::spawn(projections::supervision::run(
            database.pool.clone(),
            state.applications.services().policies.clone(),
            stopped.clone(),
        ));
        let inspections = tokio::spawn(projections::inspection::run(
            database.pool.clone(),
            stopped.clone(),
        ));
        let sealer = sealer.map(|sealer| {
            let (stop_sealer, sealer_stopped) = watch::channel(false);
            (
                stop_sealer,
                tokio::spawn(sealer.run(sealer_stopped, failure)),
            )
        });
        let mut http_stopped = stopped;
        let shutdown = async move {
            let _ = http_stopped.wait_for(|stop| *stop).await;
        };
        let http = tokio::spawn(http::serve(listener, state.clone(), shutdown));
        Ok(RunningServer {
            address,
            state,
            stop,
            http,
            projector,
            supervision,
            inspections,
            sealer,
        })
    }

    /// Stops accepting requests, finishes in-flight ones, then stops the projectors and the
    /// sealer, which seals once more before it stops.
    ///
    /// # Errors
    /// Returns the HTTP server's failure, if it failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = self.http.await.context("HTTP server task panicked")?;
        self.projector.await.context("projector task panicked")?;
        self.supervision
            .await
            .context("supervision projector task panicked")?;
        self.inspections
            .await
            .context("inspections projector task panicked")?;
        if let Some((stop_sealer, sealer)) = self.sealer {
            let _ = stop_sealer.send(true);
            sealer.await.context("ledger sealer task panicked")?;
        }
        served
    }
}

/// Rejects a database whose events carry transaction ids that the PostgreSQL server has not
/// assigned yet, as after restoring a logical dump into another server: new events would sort
/// before them in commit order and never be read.
///
/// # Errors
/// Fails on such a database, naming the repair, or when the database cannot be read.
async fn check_transaction_ids(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let (stored, next): (Option<i64>, i64) = sqlx::query_as(
        "SELECT (SELECT max(transaction_id) FROM events),
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint",
    )
    .fetch_one(pool)
    .await?;
    if let Some(stored) = stored.filter(|stored| *stored >= next) {
        anyhow::bail!(
            "the events carry transaction ids up to {stored}, but this PostgreSQL server's next transaction id is {next}, as after restoring a logical dump into another server; new events would never be sealed or projected. Shift the stored ids below zero as docs/ledger.md shows, with the server stopped"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads")
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("valid date")
    }

    #[test]
    fn calendar_far_from_its_end_has_no_warning() {
        let coverage = calendar_coverage(&policy(), date("2026-06-01"));
        assert_eq!(coverage.covered_until, Some(date("2026-12-31")));
        assert_eq!(coverage.days_left, Some(213));
        assert_eq!(coverage.warning, None);
    }

    #[test]
    fn calendar_near_its_end_warns() {
        let coverage = calendar_coverage(&policy(), date("2026-12-05"));
        assert_eq!(coverage.days_left, Some(26));
        let warning = coverage.warning.expect("a warning 26 days before the end");
        assert!(warning.contains("ends on 2026-12-31"), "{warning}");
        assert!(warning.contains("holiday notice for 2027"), "{warning}");
    }

    #[test]
    fn calendar_past_its_end_warns() {
        let coverage = calendar_coverage(&policy(), date("2027-01-04"));
        assert_eq!(coverage.covered_until, None);
        assert_eq!(coverage.days_left, None);
        let warning = coverage.warning.expect("a warning past the end");
        assert!(warning.contains("does not cover 2027"), "{warning}");
    }
}
