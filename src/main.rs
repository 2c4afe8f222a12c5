//! The `zhengming` command: serve the API, run the demo, verify the ledger, and set up
//! stations, officers and tokens.

use std::net::SocketAddr;
use std::path::PathBuf;

use aggregates::policy::Role;
use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use zhengming::database::Database;
use zhengming::registry::{self, Officer};
use zhengming::server::{RunningServer, load_policy};
use zhengming::{demo, verify};

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
    },
    /// Start a server on a new embedded database and drive a month of station work through it.
    Demo {
        /// Scenario file to run instead of the bundled month.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Check every hash chain and report the first damage.
    Verify,
    /// Add a city, county and station.
    Station {
        #[arg(long)]
        city: String,
        #[arg(long)]
        county: String,
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
    },
    /// Add an officer to a station.
    Officer {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// household_officer, community_officer, case_officer or station_leader.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        station: String,
    },
    /// Create a bearer token for an officer and print it once.
    Token {
        #[arg(long)]
        officer: String,
    },
    /// Load the population register that exchange requests are verified against, from a CSV
    /// file in the format of docs/exchange.md; rows for known ID numbers are replaced.
    Population {
        #[arg(long)]
        file: PathBuf,
    },
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
    let policies = load_policy(settings.policy.as_deref())?;
    if let Command::Demo { scenario } = &settings.command {
        return demo::run(
            settings.database_url.as_deref(),
            scenario.as_deref(),
            policies,
        )
        .await;
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
    let result = run(&settings.command, &database, policies).await;
    database.close().await;
    result
}

async fn run(
    command: &Command,
    database: &Database,
    policies: aggregates::policy::PolicyBook,
) -> anyhow::Result<()> {
    let pool = &database.pool;
    match command {
        Command::Serve { listen } => {
            let server = RunningServer::start(database, policies, *listen).await?;
            println!("listening on http://{}", server.address);
            shutdown_signal().await;
            tracing::info!("shutdown requested; finishing in-flight requests");
            server.stop().await
        }
        Command::Verify => {
            let report = verify::verify_all(pool).await?;
            verify::print_report(&report);
            match report.first_break {
                Some(_) => std::process::exit(2),
                None => Ok(()),
            }
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
        Command::Token { officer } => {
            let token = registry::create_token(pool, officer).await?;
            println!("{token}");
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
    }
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
