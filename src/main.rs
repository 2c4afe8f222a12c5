//! The `zhengming` command: serve the API, run the demo, verify the ledger, and set up
//! stations, officers and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use aggregates::policy::Role;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zhengming::database::Database;
use zhengming::demo;
use zhengming::ledger::{CheckpointDirectory, LedgerKey, LedgerSettings};
use zhengming::ledger::{audit, bundle};
use zhengming::registry::{self, Officer};
use zhengming::server::{RunningServer, ServerOptions, load_policy};

/// Certificate ledger for police stations: every step an immutable, hash-chained event.
#[derive(Parser)]
#[command(version)]
struct Settings {
    /// PostgreSQL server to use; without it an embedded PostgreSQL runs in --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Directory of the embedded database.
    #[arg(
        long,
        env = "ZHENGMING_DATA_DIR",
        global = true,
        default_value = ".zhengming/data"
    )]
    data_dir: PathBuf,
    /// Policy document to load instead of the bundled one; holidays-cn.csv must lie beside it.
    #[arg(long, env = "ZHENGMING_POLICY", global = true)]
    policy: Option<PathBuf>,
    /// Connections in the pool to a PostgreSQL server (the embedded one takes one).
    #[arg(
        long,
        env = "ZHENGMING_MAX_CONNECTIONS",
        global = true,
        default_value_t = 16
    )]
    max_connections: u32,
    /// Log format: `text` or `json`.
    #[arg(
        long,
        env = "ZHENGMING_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    log_format: String,
    /// Directory outside the database that receives every signed checkpoint and public key.
    /// `serve` does not start when the database is behind it, and `verify` checks against it.
    #[arg(long, env = "ZHENGMING_CHECKPOINT_DIR", global = true)]
    checkpoint_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on; port 0 picks a free port and logs it.
        #[arg(long, env = "ZHENGMING_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// How many days before today a command may date a decision, refusal, approval,
        /// issuance or withdrawal; later dates are always rejected.
        #[arg(long, env = "ZHENGMING_BACKDATE_DAYS", default_value_t = 7)]
        backdate_days: u32,
        /// Key file that signs checkpoints, written by `zhengming ledger-key`.
        #[arg(long, env = "ZHENGMING_LEDGER_KEY_FILE")]
        ledger_key_file: Option<PathBuf>,
        /// Seconds between sealing rounds; a checkpoint follows a commit within about this time.
        #[arg(long, env = "ZHENGMING_SEAL_INTERVAL_SECONDS", default_value_t = 5)]
        seal_interval: u64,
        /// Serve without sealing, beside the one process that seals this database; no key or
        /// checkpoint directory is needed.
        #[arg(long)]
        no_seal: bool,
    },
    /// Write a new Ed25519 key file for signing checkpoints; the file must not exist yet.
    LedgerKey {
        /// Path of the key file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Start a server on a new embedded database and drive a month of station work through it.
    Demo {
        /// Scenario file to run instead of the bundled month.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Check every hash chain, every checkpoint's root and signature, and agreement with the
    /// checkpoint directory; report the first damage.
    Verify,
    /// Write a case, or the whole sealed ledger, as a self-contained bundle for independent
    /// verification (ops/verify_bundle.py); needs --checkpoint-dir for the public keys.
    Export {
        /// Bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Application id to export; without it, every sealed event.
        #[arg(long)]
        case: Option<String>,
    },
    /// Empty the read models (applications, certificates, supervision findings) and apply the
    /// whole event log again. Running servers keep working, but read partial views until it
    /// finishes.
    Rebuild,
    /// Add a city, county and station.
    Station {
        /// Code of the city: its administrative division code (e.g. 220100). A province is
        /// named in reports by the leading digits its city codes share (22 for Jilin).
        #[arg(long, value_parser = non_empty)]
        city: String,
        /// Code of the county or district (e.g. 220102).
        #[arg(long, value_parser = non_empty)]
        county: String,
        /// Code of the station, unique in the province (e.g. 220102-01).
        #[arg(long, value_parser = non_empty)]
        code: String,
        /// Name of the station as printed on its certificates.
        #[arg(long, value_parser = non_empty)]
        name: String,
    },
    /// Add an officer to a station.
    Officer {
        /// The officer's login id, unique in the province.
        #[arg(long, value_parser = non_empty)]
        id: String,
        /// The officer's full name.
        #[arg(long, value_parser = non_empty)]
        name: String,
        /// household_officer, community_officer, case_officer, station_leader, inspector or
        /// provincial_officer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Code of the officer's station.
        #[arg(long, value_parser = non_empty)]
        station: String,
    },
    /// Create a bearer token for an officer and print it once, or revoke the officer's tokens.
    Token {
        /// The officer's id.
        #[arg(long)]
        officer: String,
        /// Revoke every token of the officer instead of creating one.
        #[arg(long)]
        revoke: bool,
    },
    /// Load the population register that exchange requests are verified against, from a CSV
    /// file in the format of docs/exchange.md. Rows for known ID numbers are replaced.
    Population {
        /// CSV file of register rows.
        #[arg(long)]
        file: PathBuf,
    },
}

fn non_empty(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(text.to_string())
}

fn parse_role(code: &str) -> Result<Role, String> {
    Role::from_code(code).ok_or_else(|| {
        let codes: Vec<&str> = Role::ALL.iter().map(|role| role.code()).collect();
        format!("unknown role {code:?}; use one of {}", codes.join(", "))
    })
}

fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,sqlx=warn,wasmer=warn,wasmer_wasix=warn,pglite_oxide=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("unknown log format {other:?}; use text or json"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    init_logging(&settings.log_format)?;
    if let Command::LedgerKey { out } = &settings.command {
        let key = LedgerKey::write_new(out)?;
        println!("key {} written to {}", key.key_id, out.display());
        println!("public key: {}", key.public().public_key);
        return Ok(());
    }
    let policies = load_policy(settings.policy.as_deref())?;
    if let Command::Demo { scenario } = &settings.command {
        return demo::run(
            settings.database_url.as_deref(),
            scenario.as_deref(),
            policies,
        )
        .await;
    }
    // Check the ledger settings before touching the database, so that a missing key is
    // reported as such.
    let ledger = match &settings.command {
        Command::Serve {
            ledger_key_file,
            seal_interval,
            no_seal: false,
            ..
        } => Some(ledger_settings(
            &settings,
            ledger_key_file.as_deref(),
            *seal_interval,
        )?),
        _ => None,
    };
    // Opening would create a missing directory, whose lack of keys would then read as damage;
    // a mistyped path is the operator's error, not the ledger's.
    if let (Command::Verify, Some(path)) = (&settings.command, &settings.checkpoint_dir)
        && !path.is_dir()
    {
        anyhow::bail!(
            "checkpoint directory {} does not exist; give the directory the server exports checkpoints to",
            path.display()
        );
    }
    let database = Database::open(
        settings.database_url.as_deref(),
        &settings.data_dir,
        settings.max_connections,
    )
    .await?;
    eprintln!(
        "database: {}{}",
        database.location,
        if database.is_embedded() {
            " (embedded)"
        } else {
            ""
        }
    );
    let result = run(&settings, &database, policies, ledger).await;
    database.close().await;
    result
}

async fn run(
    settings: &Settings,
    database: &Database,
    policies: aggregates::policy::PolicyBook,
    ledger: Option<LedgerSettings>,
) -> anyhow::Result<()> {
    let pool = &database.pool;
    match &settings.command {
        Command::Serve {
            listen,
            backdate_days,
            ..
        } => {
            let options = ServerOptions {
                backdate_days: *backdate_days,
                ledger,
            };
            let server = RunningServer::start_with(database, policies, *listen, options).await?;
            println!("listening on http://{}", server.address);
            shutdown_signal().await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            server.stop().await
        }
        Command::Verify => {
            let directory = match &settings.checkpoint_dir {
                Some(path) => Some(CheckpointDirectory::open(path)?),
                None => None,
            };
            let report = audit::audit(pool, directory.as_ref()).await?;
            audit::print_report(&report);
            match report.first_damage {
                Some(_) => std::process::exit(2),
                None => Ok(()),
            }
        }
        Command::Export { out, case } => {
            let Some(path) = &settings.checkpoint_dir else {
                anyhow::bail!(
                    "export needs the checkpoint directory for the public keys; set --checkpoint-dir"
                );
            };
            let directory = CheckpointDirectory::open(path)?;
            let bundle = bundle::export(pool, &directory, case.as_deref()).await?;
            let text = serde_json::to_string_pretty(&bundle)?;
            std::fs::write(out, text)
                .with_context(|| format!("writing {} failed", out.display()))?;
            println!(
                "{} events and {} checkpoints written to {}",
                bundle.events.len(),
                bundle.checkpoints.len(),
                out.display()
            );
            Ok(())
        }
        Command::Rebuild => {
            // The views follow the log as stored; a damaged log is rebuilt as it is, so say so.
            let checked = zhengming::verify::verify_all(pool).await?;
            if let Some(found) = &checked.first_break {
                println!(
                    "WARNING: the log fails verification ({} at {} {} sequence {}); the views below show the damaged log. Run zhengming verify.",
                    found.damage, found.aggregate_type, found.aggregate_id, found.sequence
                );
            }
            let applied = projections::projector::rebuild(pool).await?;
            println!("applications projection: {applied} events applied");
            let today = projections::supervision::today_in_china();
            let applied = projections::supervision::rebuild(pool, &policies, today).await?;
            let findings: i64 = sqlx::query_scalar("SELECT count(*) FROM supervision_findings")
                .fetch_one(pool)
                .await?;
            println!(
                "supervision projection: {applied} events applied, {findings} findings as of {today}"
            );
            let applied = projections::inspection::rebuild(pool).await?;
            println!(
                "inspections projection: {applied} events of inspections, training records and problem reports applied"
            );
            Ok(())
        }
        Command::Station {
            city,
            county,
            code,
            name,
        } => {
            registry::add_station(pool, city, county, code, name).await?;
            println!("station {code} recorded");
            Ok(())
        }
        Command::Officer {
            id,
            name,
            role,
            station,
        } => {
            let officer = Officer {
                id: id.clone(),
                name: name.clone(),
                role: *role,
            };
            registry::add_officer(pool, &officer, station).await?;
            println!(
                "officer {id} recorded at station {station} as {}",
                role.code()
            );
            Ok(())
        }
        Command::Token {
            officer,
            revoke: false,
        } => {
            let token = registry::create_token(pool, officer).await?;
            println!("{token}");
            Ok(())
        }
        Command::Token {
            officer,
            revoke: true,
        } => {
            let revoked = registry::revoke_tokens(pool, officer).await?;
            println!("revoked {revoked} token(s) of officer {officer}");
            Ok(())
        }
        Command::Population { file } => {
            let reader = std::fs::File::open(file)
                .with_context(|| format!("opening {} failed", file.display()))?;
            let loaded =
                zhengming::exchange::population::load_csv(pool, std::io::BufReader::new(reader))
                    .await?;
            println!("{loaded} population register rows loaded");
            Ok(())
        }
        Command::Demo { .. } => unreachable!("the demo opens its own database"),
        Command::LedgerKey { .. } => unreachable!("writing a key needs no database"),
    }
}

/// Builds the sealing settings of `serve`. A key must be given explicitly: a server that made
/// up its own key would sign checkpoints nobody can attribute.
fn ledger_settings(
    settings: &Settings,
    key_file: Option<&std::path::Path>,
    interval_seconds: u64,
) -> anyhow::Result<LedgerSettings> {
    let key = match (std::env::var("ZHENGMING_LEDGER_KEY"), key_file) {
        (Ok(secret), _) => {
            LedgerKey::from_secret_hex(&secret).context("ZHENGMING_LEDGER_KEY is invalid")?
        }
        (Err(_), Some(path)) => LedgerKey::load(path)?,
        (Err(_), None) => anyhow::bail!(
            "no checkpoint signing key: set ZHENGMING_LEDGER_KEY_FILE (or --ledger-key-file) to a key file \
             written by `zhengming ledger-key --out FILE`, or ZHENGMING_LEDGER_KEY to its 64-digit secret"
        ),
    };
    let Some(path) = &settings.checkpoint_dir else {
        anyhow::bail!(
            "no checkpoint directory: set ZHENGMING_CHECKPOINT_DIR (or --checkpoint-dir) to a directory outside the database"
        );
    };
    anyhow::ensure!(
        interval_seconds > 0,
        "--seal-interval must be at least 1 second"
    );
    Ok(LedgerSettings {
        key,
        directory: CheckpointDirectory::open(path)?,
        interval: std::time::Duration::from_secs(interval_seconds),
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(cause = ?error, "listening for SIGINT failed");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(cause = ?error, "listening for SIGTERM failed");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}
