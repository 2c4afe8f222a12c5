//! A running server: database, policy, projector and HTTP listener, stopped together.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use aggregates::application::ApplicationServices;
use aggregates::policy::{Policy, PolicyBook, bundled};
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::database::Database;
use crate::http::{self, AppState};
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

/// Settings of a running server beyond its database and policy.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// How many days before today a command may date its decision, approval, issuance,
    /// refusal or withdrawal (paper applications entered later). Dates after today are
    /// always refused.
    pub backdate_days: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions { backdate_days: 7 }
    }
}

/// A server started on a database; [`RunningServer::stop`] shuts it down in order.
pub struct RunningServer {
    pub address: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    http: JoinHandle<anyhow::Result<()>>,
    projector: JoinHandle<()>,
}

impl RunningServer {
    /// Binds `listen` (port 0 picks a free port), starts the projector and serves the API,
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

    /// Binds `listen` (port 0 picks a free port), starts the projector and serves the API.
    ///
    /// # Errors
    /// Fails when the address cannot be bound.
    pub async fn start_with(
        database: &Database,
        policies: PolicyBook,
        listen: SocketAddr,
        options: ServerOptions,
    ) -> anyhow::Result<RunningServer> {
        let services = ApplicationServices {
            policies: Arc::new(policies),
        };
        let state = AppState::new(
            database.pool.clone(),
            ApplicationStore::new(&database.pool, services),
        )
        .with_backdate_days(options.backdate_days);
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen} failed"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let projector = tokio::spawn(projections::projector::run(
            database.pool.clone(),
            stopped.clone(),
        ));
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
        })
    }

    /// Stops accepting requests, finishes in-flight ones, then stops the projector.
    ///
    /// # Errors
    /// Returns the HTTP server's failure, if it failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let served = self.http.await.context("HTTP server task panicked")?;
        self.projector.await.context("projector task panicked")?;
        served
    }
}
