//! `zhengming-bench`: drives complete applications through the HTTP API while sampling the
//! projection lag, times `verify`, and measures what the hash chain costs on the append path.
//! Results go to `docs/benchmarks.md`.
//!
//! The server runs in this process on 127.0.0.1:0, so the peak memory reported is that of the
//! server and the load generator together: an upper bound for the server alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::policy::Role;
use anyhow::{Context, ensure};
use clap::Parser;
use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use postgres_es::PostgresEventRepository;
use serde_json::{Value, json};
use sqlx::Connection;
use zhengming::database::Database;
use zhengming::registry::{self, City, County, Officer, Station};
use zhengming::server::{RunningServer, load_policy};
use zhengming::store::ChainedEventRepository;

#[path = "event_rows.rs"]
mod event_rows;
#[path = "lag_sampler.rs"]
mod lag_sampler;
#[path = "ledger_bench.rs"]
mod ledger_bench;

/// Benchmark of the certificate ledger.
#[derive(Parser)]
struct Settings {
    /// PostgreSQL server whose user may create databases; without it the embedded database runs.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Complete applications to drive through HTTP; every fifth is a no-criminal-record
    /// application.
    #[arg(long, default_value_t = 1000)]
    applications: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Appends per repository in the hash-chain cost measurement.
    #[arg(long, default_value_t = 5000)]
    appends: usize,
    /// Instead of the API run, write this many events directly and time sealing and verifying
    /// the ledger.
    #[arg(long)]
    ledger_events: Option<u64>,
    /// Markdown file the results are appended to.
    #[arg(long, default_value = "docs/benchmarks.md")]
    output: std::path::PathBuf,
}

struct Figures {
    database: String,
    applications: usize,
    concurrency: usize,
    commands: u64,
    command_seconds: f64,
    lag: lag_sampler::LagFigures,
    events: u64,
    verify_seconds: f64,
    appends: usize,
    cost: ChainCost,
    peak_memory_mb: f64,
}

/// Append times with and without the hash chain, summed over rounds.
struct ChainCost {
    rounds: usize,
    chained_seconds: f64,
    plain_seconds: f64,
    /// A second plain run: its difference from the first is the measurement's noise.
    control_seconds: f64,
    /// The smallest and largest cost of a single round, in percent.
    round_range: (f64, f64),
}

/// Rounds the cost measurement is split into; the order of its three runs rotates each round.
const COST_ROUNDS: usize = 12;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let dir = tempfile::tempdir()?;
    let (database, label) = open_fresh(settings.database_url.as_deref(), dir.path()).await?;
    if let Some(events) = settings.ledger_events {
        let result = ledger_bench::run(&database, events).await;
        database.close().await;
        drop_bench_database(settings.database_url.as_deref()).await?;
        let command =
            format!("cargo run --release --bin zhengming-bench -- --ledger-events {events}");
        let report = ledger_bench::render(&result?, &label, &machine(), &command);
        print!("{report}");
        return append(&settings.output, &report);
    }
    let result = run(&settings, &database, label).await;
    database.close().await;
    if let Some(url) = &settings.database_url {
        let mut admin = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {}",
            bench_database_name()
        ))
        .execute(&mut admin)
        .await?;
    }
    let figures = result?;
    let report = render(&figures);
    print!("{report}");
    append(&settings.output, &report)?;
    Ok(())
}

async fn drop_bench_database(url: Option<&str>) -> anyhow::Result<()> {
    if let Some(url) = url {
        let mut admin = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {}",
            bench_database_name()
        ))
        .execute(&mut admin)
        .await?;
    }
    Ok(())
}

/// Name of the database a run creates on the server and drops at the end.
fn bench_database_name() -> String {
    format!("zhengming_bench_{}", std::process::id())
}

async fn open_fresh(
    url: Option<&str>,
    dir: &std::path::Path,
) -> anyhow::Result<(Database, String)> {
    match url {
        Some(url) => {
            let name = bench_database_name();
            let mut admin = sqlx::PgConnection::connect(url)
                .await
                .context("connecting to DATABASE_URL failed")?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                .execute(&mut admin)
                .await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
            let (base, _) = url
                .rsplit_once('/')
                .context("DATABASE_URL names no database")?;
            let database = Database::open(Some(&format!("{base}/{name}")), dir, 40).await?;
            Ok((database, "PostgreSQL server (local, 127.0.0.1)".into()))
        }
        None => Ok((
            Database::open(None, dir, 1).await?,
            "embedded PGlite".into(),
        )),
    }
}

async fn run(settings: &Settings, database: &Database, label: String) -> anyhow::Result<Figures> {
    let tokens = set_up(database).await?;
    let server = RunningServer::start(
        database,
        load_policy(None)?,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await?;
    let base = format!("http://{}", server.address);
    let sampler = lag_sampler::LagSampler::start(database.pool.clone());
    let started = Instant::now();
    let commands = drive(&base, &tokens, settings.applications, settings.concurrency).await;
    let command_seconds = started.elapsed().as_secs_f64();
    let lag = sampler.finish().await;
    server.stop().await?;
    let commands = commands?;
    let lag = lag?;

    let started = Instant::now();
    let report = zhengming::verify::verify_all(&database.pool).await?;
    let verify_seconds = started.elapsed().as_secs_f64();
    ensure!(
        report.first_break.is_none(),
        "verify found damage: {:?}",
        report.first_break
    );

    let cost = time_chain_cost(database, settings.appends, settings.concurrency).await?;
    Ok(Figures {
        database: label,
        applications: settings.applications,
        concurrency: settings.concurrency,
        commands,
        command_seconds,
        lag,
        events: report.events,
        verify_seconds,
        appends: settings.appends,
        cost,
        peak_memory_mb: peak_memory_mb(),
    })
}

async fn set_up(database: &Database) -> anyhow::Result<HashMap<Role, String>> {
    let officer = |id: &str, role| Officer {
        id: id.into(),
        name: id.into(),
        role,
    };
    let station = Station {
        code: "B1".into(),
        name: "benchmark station".into(),
        officers: vec![
            officer("b-hh", Role::HouseholdOfficer),
            officer("b-cm", Role::CommunityOfficer),
            officer("b-ld", Role::StationLeader),
        ],
    };
    let city = City {
        code: "BC".into(),
        name: "city".into(),
        counties: vec![County {
            code: "BK".into(),
            name: "county".into(),
            stations: vec![station],
        }],
    };
    registry::add_city(&database.pool, &city).await?;
    let mut tokens = HashMap::new();
    for (id, role) in [
        ("b-hh", Role::HouseholdOfficer),
        ("b-cm", Role::CommunityOfficer),
        ("b-ld", Role::StationLeader),
    ] {
        tokens.insert(role, registry::create_token(&database.pool, id).await?);
    }
    Ok(tokens)
}

/// Runs `applications` complete applications on `concurrency` clients; returns the commands sent.
/// Every fifth is a no-criminal-record application through `/v1/record-checks`.
async fn drive(
    base: &str,
    tokens: &HashMap<Role, String>,
    applications: usize,
    concurrency: usize,
) -> anyhow::Result<u64> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, tokens, base) = (
            client.clone(),
            next.clone(),
            tokens.clone(),
            base.to_string(),
        );
        workers.push(tokio::spawn(async move {
            let mut commands = 0u64;
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= applications {
                    return Ok::<u64, anyhow::Error>(commands);
                }
                commands += if index % 5 == 4 {
                    complete_record_check(&client, &base, &tokens, index).await?
                } else {
                    complete_application(&client, &base, &tokens, index).await?
                };
            }
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await??;
    }
    Ok(total)
}

/// Submits and issues one application: a kinship certificate, or every fourth time an
/// abnormal-death certificate that also needs a leader's approval.
async fn complete_application(
    client: &reqwest::Client,
    base: &str,
    tokens: &HashMap<Role, String>,
    index: usize,
) -> anyhow::Result<u64> {
    let death = index % 4 == 3;
    let handler = if death {
        Role::CommunityOfficer
    } else {
        Role::HouseholdOfficer
    };
    let (matter, circumstances, source, seal) = if death {
        (
            "death",
            json!({"police_handled_event": true}),
            "station_dispatch_records",
            "official_seal",
        )
    } else {
        (
            "kinship",
            json!({"same_household_register": false}),
            "household_archives",
            "household_seal",
        )
    };
    let submission = json!({
        "applicant": {"name": "张伟", "id_number": "220102199001011239"},
        "unit": {"name": "Bank", "unit_type": "bank", "level": "city", "provincial_rule_requires": true},
        "matter": matter, "circumstances": circumstances, "purpose": "benchmark"
    });
    let created = send(
        client,
        &format!("{base}/v1/applications"),
        &tokens[&handler],
        submission,
        201,
    )
    .await?;
    let id = created["application_id"]
        .as_str()
        .context("submission returned no id")?
        .to_string();
    let path = |step: &str| format!("{base}/v1/applications/{id}/{step}");
    let mut steps = vec![
        (
            handler,
            "evidence",
            json!({"source": source, "reference": format!("R-{index}"), "result": "confirmed"}),
        ),
        (
            handler,
            "signature",
            json!({"signer": "applicant", "name": "张伟", "phone": "13904310000"}),
        ),
    ];
    if death {
        steps.push((Role::StationLeader, "approval", json!({})));
    }
    steps.push((handler, "issuance", json!({"seal": seal})));
    let commands = 1 + steps.len() as u64;
    for (role, step, body) in steps {
        send(client, &path(step), &tokens[&role], body, 200).await?;
    }
    Ok(commands)
}

/// Mandatory record sources of the bundled policy, each checked once per record check.
const MANDATORY_SOURCES: [&str; 5] = [
    "national_offenders_database",
    "provincial_offenders_system",
    "drug_control_system",
    "police_integrated_platform",
    "intelligence_platform",
];

/// Takes one no-criminal-record application through the form, a check of every mandatory
/// source, the results read for approval, leader approval and issuance.
async fn complete_record_check(
    client: &reqwest::Client,
    base: &str,
    tokens: &HashMap<Role, String>,
    index: usize,
) -> anyhow::Result<u64> {
    let handler = &tokens[&Role::HouseholdOfficer];
    let leader = &tokens[&Role::StationLeader];
    let form = json!({
        "applicant": {"name": "张伟", "id_number": "220102199001011239"},
        "purpose": "going_abroad",
        "destination": "benchmark consulate"
    });
    let created = send(
        client,
        &format!("{base}/v1/record-checks"),
        handler,
        form,
        201,
    )
    .await?;
    let id = created["application_id"]
        .as_str()
        .context("record check returned no id")?
        .to_string();
    let path = |step: &str| format!("{base}/v1/record-checks/{id}/{step}");
    for source in MANDATORY_SOURCES {
        let check = json!({"source": source, "query_reference": format!("Q-{index}"), "result": "no_record"});
        send(client, &path("checks"), handler, check, 200).await?;
    }
    let results = client
        .get(path("results?purpose=approval"))
        .bearer_auth(leader)
        .send()
        .await?;
    ensure!(
        results.status() == reqwest::StatusCode::OK,
        "reading results of {id} returned {}",
        results.status()
    );
    send(client, &path("approval"), leader, json!({}), 200).await?;
    let issuance = json!({"seal": "official_seal"});
    send(client, &path("issuance"), handler, issuance, 200).await?;
    Ok(4 + MANDATORY_SOURCES.len() as u64)
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Value,
    expected: u16,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await?;
    let status = response.status().as_u16();
    let answer: Value = response.json().await?;
    ensure!(
        status == expected,
        "{url} answered {status}, expected {expected}: {answer}"
    );
    Ok(answer)
}

/// Times `appends` two-event appends through the chained repository and as many through the
/// plain postgres-es repository, twice: once as the plain side of the cost, once as a control
/// that shows how far two identical runs differ on this machine. The three run in rounds whose
/// order rotates, so that a change in the machine's speed during the measurement weighs on all
/// alike. The table is vacuumed and a checkpoint is written first, so that cleanup left by the
/// command run does not fall into one side's rounds.
async fn time_chain_cost(
    database: &Database,
    appends: usize,
    concurrency: usize,
) -> anyhow::Result<ChainCost> {
    sqlx::query("VACUUM (ANALYZE) events")
        .execute(&database.pool)
        .await?;
    if let Err(error) = sqlx::query("CHECKPOINT").execute(&database.pool).await {
        eprintln!("no checkpoint before the chain cost measurement: {error}");
    }
    let chained = ChainedEventRepository::new(database.pool.clone());
    let plain = PostgresEventRepository::new(database.pool.clone());
    let mut cost = ChainCost {
        rounds: COST_ROUNDS,
        chained_seconds: 0.0,
        plain_seconds: 0.0,
        control_seconds: 0.0,
        round_range: (f64::INFINITY, f64::NEG_INFINITY),
    };
    for round in 0..COST_ROUNDS {
        let first = appends * round / COST_ROUNDS;
        let count = appends * (round + 1) / COST_ROUNDS - first;
        let mut seconds = [0.0; 3];
        for arm in 0..3 {
            let arm = (arm + round) % 3;
            seconds[arm] = match arm {
                0 => time_appends(&chained, "chained", first, count, concurrency).await?,
                1 => time_appends(&plain, "plain", first, count, concurrency).await?,
                _ => time_appends(&plain, "control", first, count, concurrency).await?,
            };
        }
        let [chained_seconds, plain_seconds, control_seconds] = seconds;
        cost.chained_seconds += chained_seconds;
        cost.plain_seconds += plain_seconds;
        cost.control_seconds += control_seconds;
        let percent = (chained_seconds / plain_seconds - 1.0) * 100.0;
        cost.round_range = (
            cost.round_range.0.min(percent),
            cost.round_range.1.max(percent),
        );
    }
    Ok(cost)
}

/// Appends `count` two-event commits through `repository`, each to a new aggregate
/// (`{label}-{first}` onwards), and returns the seconds taken. Each of the `concurrency`
/// clients takes the next append as soon as its last one committed.
async fn time_appends<R: PersistedEventRepository + 'static>(
    repository: &R,
    label: &str,
    first: usize,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let payload = json!({"EvidenceChecked": {"source": "household_archives", "reference": "R-1", "result": "confirmed", "officer": "b-hh"}});
    let metadata = json!({"actor": "b-hh", "actor_role": "household_officer", "actor_station": "B1", "request_id": "00000000-0000-0000-0000-000000000000"});
    let next = std::sync::atomic::AtomicUsize::new(first);
    let end = first + count;
    let client = || async {
        loop {
            let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if index >= end {
                return anyhow::Ok(());
            }
            let events: Vec<SerializedEvent> = (1..=2)
                .map(|sequence| {
                    SerializedEvent::new(
                        format!("{label}-{index}"),
                        sequence,
                        "application".into(),
                        "EvidenceChecked".into(),
                        "1".into(),
                        payload.clone(),
                        metadata.clone(),
                    )
                })
                .collect();
            repository
                .persist::<aggregates::application::Application>(&events, None)
                .await
                .map_err(|error| anyhow::anyhow!("append failed: {error}"))?;
        }
    };
    let started = Instant::now();
    for result in futures_util::future::join_all((0..concurrency).map(|_| client())).await {
        result?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(f64::NAN);
    kilobytes / 1024.0
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("MemTotal:")
                    .map(|rest| rest.trim().to_string())
            })
        })
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory} memory")
}

fn verdict(pass: bool) -> &'static str {
    if pass { "meets" } else { "misses" }
}

fn render(figures: &Figures) -> String {
    let rate = figures.commands as f64 / figures.command_seconds;
    let verify_rate = figures.events as f64 / figures.verify_seconds;
    let cost = &figures.cost;
    let overhead = (cost.chained_seconds / cost.plain_seconds - 1.0) * 100.0;
    format!(
        "\n## {database}, {date}\n\nMachine: {machine}. Build: release. Command: `cargo run --release --bin zhengming-bench -- --applications {applications} --concurrency {concurrency} --appends {appends}`{url}.\n\n\
         | figure | measured | target | |\n|---|---|---|---|\n\
         | HTTP commands end to end ({commands} commands, {applications} applications of which one in five a record check, {concurrency} clients) | {rate:.0} per second ({seconds:.1} s) | at least 1,500 per second on the server | {v1} |\n\
         {lag}\
         | `verify` ({events} events) | {verify_rate:.0} events per second ({verify_seconds:.2} s) | at least 100,000 per second | {v2} |\n\
         | hash-chain cost on the append path ({appends} two-event appends per repository, {concurrency} clients, in {rounds} rounds rotating the order of chained, plain and a second plain run; single rounds {low:+.1} % to {high:+.1} %) | {overhead:+.1} % ({chained:.2} s chained, {plain:.2} s plain) | at most 10 % | {v3} |\n\
         | control: the second plain run against the first (same appends, same rounds) | {control:+.1} % ({control_seconds:.2} s) | near 0 % | |\n\
         | peak memory of server and load generator together | {memory:.0} MB | server under 150 MB | {v4} |\n",
        database = figures.database,
        date = chrono::Utc::now().format("%Y-%m-%d"),
        machine = machine(),
        applications = figures.applications,
        concurrency = figures.concurrency,
        url = if figures.database.starts_with("PostgreSQL") {
            " with `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`"
        } else {
            " without `DATABASE_URL`"
        },
        commands = figures.commands,
        seconds = figures.command_seconds,
        v1 = verdict(rate >= 1500.0),
        lag = lag_sampler::render_rows(&figures.lag),
        events = figures.events,
        verify_seconds = figures.verify_seconds,
        v2 = verdict(verify_rate >= 100_000.0),
        appends = figures.appends,
        rounds = cost.rounds,
        low = cost.round_range.0,
        high = cost.round_range.1,
        control = (cost.control_seconds / cost.plain_seconds - 1.0) * 100.0,
        control_seconds = cost.control_seconds,
        chained = cost.chained_seconds,
        plain = cost.plain_seconds,
        v3 = verdict(overhead <= 10.0),
        memory = figures.peak_memory_mb,
        v4 = verdict(figures.peak_memory_mb < 150.0),
    )
}

fn append(path: &std::path::Path, report: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        writeln!(
            file,
            "# Benchmarks\n\nEach section is one run of `zhengming-bench` (source in `ops/bench.rs`), newest last."
        )?;
    }
    file.write_all(report.as_bytes())?;
    Ok(())
}
