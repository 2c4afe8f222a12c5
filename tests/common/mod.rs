//! A real server on 127.0.0.1:0 with a fresh, migrated database per test: the embedded
//! PostgreSQL in a temporary directory, or a new database on the server `DATABASE_URL` names.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use aggregates::policy::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;
use zhengming::database::Database;
use zhengming::ledger::LedgerSettings;
use zhengming::registry::{self, City, County, Officer, Station};
use zhengming::server::{RunningServer, ServerOptions, load_policy};

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub database: Option<Database>,
    pub base: String,
    pub http: reqwest::Client,
    /// Token per officer id: hh, cm, ld, ld2 at station S1 and hh9 at station S2.
    pub tokens: BTreeMap<String, String>,
    /// The server database of this test, when tests run against `DATABASE_URL`.
    pub database_url: Option<String>,
    /// Data directory of the embedded database.
    pub dir: tempfile::TempDir,
    _serial: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Embedded servers run one at a time: several PGlite instances started and stopped
/// concurrently in one process were seen to hang on shutdown.
static EMBEDDED: std::sync::LazyLock<Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Arc::default);

async fn fresh_database(dir: &std::path::Path) -> (Database, Option<String>) {
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let name = format!("zhengming_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&url)
                .await
                .expect("DATABASE_URL is reachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("test database is created");
            let (base, _) = url.rsplit_once('/').expect("DATABASE_URL names a database");
            let url = format!("{base}/{name}");
            let database = Database::open(Some(&url), dir, 8)
                .await
                .expect("test database opens");
            (database, Some(url))
        }
        Err(_) => {
            let database = Database::open(None, dir, 1)
                .await
                .expect("embedded database starts");
            (database, None)
        }
    }
}

fn officer(id: &str, role: Role) -> Officer {
    Officer {
        id: id.into(),
        name: format!("officer {id}"),
        role,
    }
}

impl TestServer {
    /// Starts a server that accepts dates back to 1926: the tests replay situations dated in
    /// the 2015 transition window and in November 2026.
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerOptions {
            backdate_days: 36_500,
            ledger: None,
        })
        .await
    }

    /// Starts like [`TestServer::start`], sealing the ledger with `ledger` when given.
    pub async fn start_with_ledger(ledger: Option<LedgerSettings>) -> TestServer {
        TestServer::start_with(ServerOptions {
            backdate_days: 36_500,
            ledger,
        })
        .await
    }

    pub async fn start_with(options: ServerOptions) -> TestServer {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let serial = match std::env::var("DATABASE_URL") {
            Ok(_) => None,
            Err(_) => Some(EMBEDDED.clone().lock_owned().await),
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let (database, database_url) = fresh_database(dir.path()).await;
        let city = City {
            code: "C1".into(),
            name: "city".into(),
            counties: vec![County {
                code: "K1".into(),
                name: "county".into(),
                stations: vec![
                    Station {
                        code: "S1".into(),
                        name: "station one".into(),
                        officers: vec![
                            officer("hh", Role::HouseholdOfficer),
                            officer("cm", Role::CommunityOfficer),
                            officer("ld", Role::StationLeader),
                            officer("ld2", Role::StationLeader),
                        ],
                    },
                    Station {
                        code: "S2".into(),
                        name: "station two".into(),
                        officers: vec![officer("hh9", Role::HouseholdOfficer)],
                    },
                ],
            }],
        };
        registry::add_city(&database.pool, &city)
            .await
            .expect("city is recorded");
        let mut tokens = BTreeMap::new();
        for id in ["hh", "cm", "ld", "ld2", "hh9"] {
            tokens.insert(
                id.to_string(),
                registry::create_token(&database.pool, id)
                    .await
                    .expect("token is created"),
            );
        }
        let policies = load_policy(None).expect("bundled policy loads");
        let server = RunningServer::start_with(
            &database,
            policies,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            options,
        )
        .await
        .expect("server starts");
        let base = format!("http://{}", server.address);
        TestServer {
            server: Some(server),
            database: Some(database),
            base,
            http: reqwest::Client::new(),
            tokens,
            database_url,
            dir,
            _serial: serial,
        }
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.database.as_ref().expect("database is open").pool
    }

    pub async fn post(&self, officer: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[officer])
            .json(&body)
            .send()
            .await
            .expect("server answers");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn get(&self, officer: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(officer) = officer {
            request = request.bearer_auth(&self.tokens[officer]);
        }
        let response = request.send().await.expect("server answers");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// Inserts `stored`, already linked, into the events table, bypassing the command handlers:
    /// history imported from elsewhere or written around the API.
    pub async fn insert_event(&self, stored: &aggregates::chain::StoredEvent) {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6::text::json, $7::text::json, 0, now())",
        )
        .bind(&stored.aggregate_type)
        .bind(&stored.aggregate_id)
        .bind(stored.sequence as i64)
        .bind(&stored.event_type)
        .bind(&stored.event_version)
        .bind(stored.payload.to_string())
        .bind(stored.metadata.to_string())
        .execute(self.pool())
        .await
        .expect("event is inserted");
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(self.pool())
            .await
            .expect("count events")
    }

    /// Submits an application and returns its id; panics unless it is created.
    pub async fn submit(&self, officer: &str, body: Value) -> String {
        let (status, answer) = self.post(officer, "/v1/applications", body).await;
        assert_eq!(status, StatusCode::CREATED, "submission answered {answer}");
        answer["application_id"].as_str().expect("id").to_string()
    }

    /// Stops the HTTP server (and its sealer) but keeps the database open.
    pub async fn stop_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
    }

    /// Starts a new server on the same database, as after a restart; returns the server's
    /// start-up error, if any.
    pub async fn restart(&mut self, ledger: Option<LedgerSettings>) -> anyhow::Result<()> {
        self.stop_server().await;
        let database = self.database.as_ref().expect("database is open");
        let policies = load_policy(None).expect("bundled policy loads");
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        let options = ServerOptions {
            backdate_days: 36_500,
            ledger,
        };
        let server = RunningServer::start_with(database, policies, address, options).await?;
        self.base = format!("http://{}", server.address);
        self.server = Some(server);
        Ok(())
    }

    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops");
        }
        if let Some(database) = self.database.take() {
            database.close().await;
        }
        // Each test on the server creates its own database; remove it, so that runs do not
        // fill the disk. A test that panics leaves its database for `.ci/run` to remove.
        if let (Some(url), Ok(admin_url)) = (&self.database_url, std::env::var("DATABASE_URL")) {
            let name = url.rsplit_once('/').map_or("", |(_, name)| name);
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

/// Returns a kinship request between two household registers, which screening issues.
/// Runs the `zhengming` command with `args` on the database at `url`, with one connection.
///
/// NOTE: right after the test's own pool closes, the embedded database has been seen to accept
/// no new client within the command's 10 s connection timeout, about once in a few runs. The
/// cause is not known, so a run that fails this way alone is repeated, twice at most.
pub fn run_cli(
    args: &[&str],
    url: &str,
    envs: &[(&str, &std::path::Path)],
) -> std::process::Output {
    let mut attempt = 1;
    loop {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_zhengming"))
            .args(args)
            .args(["--max-connections", "1"])
            .env("DATABASE_URL", url)
            .envs(envs.iter().copied())
            .output()
            .expect("zhengming runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if attempt == 3 || !stderr.contains("pool timed out while waiting for an open connection") {
            return output;
        }
        attempt += 1;
    }
}

pub fn kinship_request() -> Value {
    json!({
        "applicant": {"name": "张伟", "id_number": "220102199001011239"},
        "unit": {"name": "Bank of China", "unit_type": "bank", "level": "city", "provincial_rule_requires": true},
        "matter": "kinship",
        "circumstances": {"same_household_register": false},
        "purpose": "foreign-currency transfer",
        "decision_date": "2026-11-02"
    })
}

/// Returns a request about a death the police handled, issued as `abnormal_death` after approval.
pub fn death_request() -> Value {
    let mut request = kinship_request();
    request["matter"] = json!("death");
    request["circumstances"] = json!({"police_handled_event": true});
    request
}
