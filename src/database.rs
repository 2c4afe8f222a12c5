//! Opening the database: the PostgreSQL server named by `DATABASE_URL`, or an embedded
//! PostgreSQL in the data directory. Migrations run on every open.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// An open database and, for the embedded one, the server that must stay alive with it.
pub struct Database {
    pub pool: PgPool,
    /// Location of the data, for the operator: the data directory or the server URL.
    pub location: String,
    /// URL other clients can connect with; the embedded server serves one client at a time.
    pub url: String,
    #[cfg(feature = "embedded")]
    embedded: Option<pglite_oxide::PgliteServer>,
}

impl Database {
    /// Connects to `database_url`, or starts the embedded PostgreSQL in `data_dir` when it is
    /// `None`, then applies pending migrations.
    ///
    /// # Errors
    /// Fails when the server cannot be reached, the embedded database cannot start, or a
    /// migration fails.
    pub async fn open(
        database_url: Option<&str>,
        data_dir: &Path,
        max_connections: u32,
    ) -> anyhow::Result<Database> {
        let database = match database_url {
            Some(url) => Database::connect_server(url, max_connections).await?,
            None => Database::start_embedded(data_dir).await?,
        };
        database.migrate().await?;
        Ok(database)
    }

    /// Applies pending migrations. When every migration is applied already, the migrator is
    /// not run, so a role without the right to create tables (`ops/roles.sql`) can start.
    async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = sqlx::migrate!("./migrations");
        // Before the first start the table is absent, which counts as pending. A changed
        // migration also counts, so that the migrator reports the checksum mismatch.
        let applied: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
                .unwrap_or_default();
        let pending = migrator.iter().any(|migration| {
            !applied.iter().any(|(version, checksum)| {
                *version == migration.version && checksum[..] == migration.checksum[..]
            })
        });
        if !pending {
            return Ok(());
        }
        migrator.run(&self.pool).await.with_context(|| {
            "applying database migrations failed; the first start and every upgrade must run \
             as a role that may create tables (zhengming_owner in ops/roles.sql)"
        })
    }

    async fn connect_server(url: &str, max_connections: u32) -> anyhow::Result<Database> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to DATABASE_URL failed; check that the server runs and the URL is right")?;
        let location = redact_password(url);
        Ok(Database {
            pool,
            location,
            url: url.to_string(),
            #[cfg(feature = "embedded")]
            embedded: None,
        })
    }

    #[cfg(feature = "embedded")]
    async fn start_embedded(data_dir: &Path) -> anyhow::Result<Database> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {} failed", data_dir.display()))?;
        let root = data_dir.to_path_buf();
        let server = tokio::task::spawn_blocking(move || {
            pglite_oxide::PgliteServer::builder().path(root).start()
        })
        .await
        .context("embedded database task failed")?
        .with_context(|| {
            format!(
                "starting the embedded database in {} failed",
                data_dir.display()
            )
        })?;
        // The embedded server accepts one connection at a time.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect(&server.database_url())
            .await
            .context("connecting to the embedded database failed")?;
        Ok(Database {
            pool,
            location: data_dir.display().to_string(),
            url: server.database_url(),
            embedded: Some(server),
        })
    }

    #[cfg(not(feature = "embedded"))]
    async fn start_embedded(_data_dir: &Path) -> anyhow::Result<Database> {
        anyhow::bail!(
            "this build has no embedded database; set DATABASE_URL or build with the `embedded` feature"
        )
    }

    /// Tells whether this is the embedded database.
    pub fn is_embedded(&self) -> bool {
        #[cfg(feature = "embedded")]
        return self.embedded.is_some();
        #[cfg(not(feature = "embedded"))]
        return false;
    }

    /// Closes the pool and stops the embedded server, if any.
    pub async fn close(self) {
        self.pool.close().await;
        #[cfg(feature = "embedded")]
        if let Some(server) = self.embedded {
            stop_embedded(server).await;
        }
    }
}

/// Stops the embedded server. pglite-oxide 0.5.1 wakes its listener once on shutdown; if the
/// worker is still serving the pool's closing connection at that moment, the wake is lost and
/// the join never returns. A short pause lets the worker finish first, and a time limit keeps a
/// lost wake from holding up the process.
#[cfg(feature = "embedded")]
async fn stop_embedded(server: pglite_oxide::PgliteServer) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::task::spawn_blocking(move || server.shutdown());
    match tokio::time::timeout(Duration::from_secs(5), stopping).await {
        Ok(Ok(Ok(()))) => tracing::info!("embedded database stopped"),
        Ok(Ok(Err(error))) => {
            tracing::error!(cause = ?error, "stopping the embedded database failed")
        }
        Ok(Err(error)) => tracing::error!(cause = ?error, "stopping the embedded database failed"),
        Err(_) => tracing::warn!(
            "embedded database did not stop within 5 s; its data is committed, exiting anyway"
        ),
    }
}

/// Returns the URL with any password replaced by `***`, for logs and messages.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
