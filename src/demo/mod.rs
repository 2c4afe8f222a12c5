//! `zhengming demo`: a new embedded database, a city with three stations, and a month of
//! station work driven through the real HTTP API from a scenario file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aggregates::policy::PolicyBook;
use anyhow::Context;
use chrono::{Datelike, NaiveDate};

use crate::database::Database;
use crate::http::today_in_china;
use crate::ledger::{CheckpointDirectory, LedgerKey, LedgerSettings, audit};
use crate::registry;
use crate::server::{RunningServer, ServerOptions};

mod client;
mod exchange;
mod oversight;
pub mod scenario;
mod station;

use scenario::{Case, Scenario};
use station::{Outcome as RunOutcome, StationDesk};

/// Runs the demo and prints its summary.
///
/// # Errors
/// Fails when the database or server cannot start, or when any step's result differs from
/// what the scenario expects.
pub async fn run(
    database_url: Option<&str>,
    scenario_path: Option<&Path>,
    policies: PolicyBook,
) -> anyhow::Result<()> {
    let scenario_text = match scenario_path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {} failed", path.display()))?,
        None => scenario::BUNDLED_MONTH.to_string(),
    };
    let scenario = scenario::parse_scenario(&scenario_text).context("scenario file is invalid")?;
    let cases = scenario::parse_cases(scenario::BUNDLED_CASES)?;
    let demo_dir = PathBuf::from(format!(
        ".zhengming/demo-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    ));
    let data_dir = demo_dir.join("database");
    if database_url.is_none() {
        println!("embedded database in {}", data_dir.display());
    }
    let ledger_dir = demo_dir.join("ledger");
    let ledger = demo_ledger(&ledger_dir)?;
    println!(
        "demo signing key {} and checkpoints in {}",
        ledger.key.key_id,
        ledger_dir.display()
    );
    let database = Database::open(database_url, &data_dir, 8).await?;
    let result = drive(&database, policies, &scenario, &cases, ledger).await;
    database.close().await;
    result
}

/// Writes a new signing key for this demo only and opens its checkpoint directory. A server
/// never generates its key; the demo does, because its ledger is thrown away.
fn demo_ledger(dir: &Path) -> anyhow::Result<LedgerSettings> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {} failed", dir.display()))?;
    Ok(LedgerSettings {
        key: LedgerKey::write_new(&dir.join("demo.key"))?,
        directory: CheckpointDirectory::open(&dir.join("published"))?,
        interval: Duration::from_secs(1),
    })
}

async fn drive(
    database: &Database,
    policies: PolicyBook,
    scenario: &Scenario,
    cases: &[Case],
    ledger: LedgerSettings,
) -> anyhow::Result<()> {
    let directory = ledger.directory.clone();
    registry::add_city(&database.pool, &scenario.city).await?;
    let mut tokens = BTreeMap::new();
    for station in scenario
        .city
        .counties
        .iter()
        .flat_map(|county| &county.stations)
    {
        for officer in &station.officers {
            tokens.insert(
                officer.id.clone(),
                registry::create_token(&database.pool, &officer.id).await?,
            );
        }
    }
    // The scenario replays a past month, so the server accepts dates back to its first day.
    let first_day = working_days(&scenario.month)?
        .first()
        .copied()
        .context("the scenario month has no working day")?;
    let options = ServerOptions {
        backdate_days: u32::try_from((today_in_china() - first_day).num_days().max(0))?,
        ledger: Some(ledger),
    };
    let server = RunningServer::start_with(
        database,
        policies,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        options,
    )
    .await?;
    println!("server on http://{}", server.address);
    let started = Instant::now();
    let outcome = work_the_month(server.address, scenario, cases, &tokens, &database.pool).await;
    let exchanged = match &scenario.exchange {
        Some(exchange) => {
            Some(exchange_month(server.address, exchange, &tokens, &database.pool).await)
        }
        None => None,
    };
    let client = client::ApiClient::new(format!("http://{}", server.address));
    let days = working_days(&scenario.month)?;
    let overseen = oversight::run(&client, scenario, &tokens, &days, &database.pool).await;
    let elapsed = started.elapsed();
    let caught_up = wait_for_projection(&database.pool).await;
    server.stop().await?;
    let outcome = outcome?;
    let exchanged = exchanged.transpose()?;
    let overseen = overseen?;
    caught_up?;
    print_summary(&database.pool, &outcome, elapsed).await?;
    if let Some(exchanged) = &exchanged {
        print_exchange(exchanged);
    }
    oversight::print(&overseen);
    // Stopping the server sealed every event, so the audit checks the whole month against
    // the signed checkpoints and their exported copies.
    let report = audit::audit(&database.pool, Some(&directory)).await?;
    audit::print_report(&report);
    let differences = outcome.mismatches.len()
        + exchanged
            .as_ref()
            .map_or(0, |exchanged| exchanged.differences.len());
    anyhow::ensure!(
        differences == 0,
        "{differences} steps did not go as the scenario expects"
    );
    anyhow::ensure!(
        report.first_damage.is_none(),
        "the event log or the ledger does not verify"
    );
    Ok(())
}

async fn work_the_month(
    address: SocketAddr,
    scenario: &Scenario,
    cases: &[Case],
    tokens: &BTreeMap<String, String>,
    pool: &sqlx::PgPool,
) -> anyhow::Result<RunOutcome> {
    let days = working_days(&scenario.month)?;
    let stations: Vec<StationDesk> = scenario
        .city
        .counties
        .iter()
        .flat_map(|county| &county.stations)
        .map(|station| StationDesk::new(address, station, tokens))
        .collect();
    anyhow::ensure!(!stations.is_empty(), "the scenario has no station");
    let mut outcome = RunOutcome::default();
    // Interleave situations so that every day sees a mix, as a station's queue does.
    let mut arrivals = Vec::new();
    let longest = scenario
        .situations
        .iter()
        .map(|situation| situation.count)
        .max()
        .unwrap_or(0);
    for round in 0..longest {
        arrivals.extend(
            scenario
                .situations
                .iter()
                .filter(|situation| situation.count > round),
        );
    }
    for (index, situation) in arrivals.into_iter().enumerate() {
        let case = cases
            .iter()
            .find(|case| case.number == situation.case)
            .with_context(|| format!("scenario names unknown case {}", situation.case))?;
        let day = days[index * days.len() / arrivals_len(scenario)];
        let desk = &stations[index % stations.len()];
        desk.handle(situation, case, day, index as u32, &mut outcome)
            .await?;
    }
    let mut index = 0;
    for situation in &scenario.record_checks {
        for _ in 0..situation.count {
            let day = days[index % days.len()];
            let desk = &stations[index % stations.len()];
            desk.record_check(situation, day, index as u32, &mut outcome)
                .await?;
            index += 1;
        }
    }
    for situation in &scenario.unit_visits {
        for _ in 0..situation.count {
            let day = days[index % days.len()];
            let desk = &stations[index % stations.len()];
            desk.unit_visit(situation, day, index as u32, &mut outcome)
                .await?;
            index += 1;
        }
    }
    for bad in &scenario.bad_inputs {
        let case = cases
            .iter()
            .find(|case| case.number == bad.case)
            .with_context(|| format!("bad input names unknown case {}", bad.case))?;
        stations[0]
            .reject(bad, case, days[0], pool, &mut outcome)
            .await?;
    }
    Ok(outcome)
}

/// Loads the bundled population register and runs the month's exchange requests.
async fn exchange_month(
    address: SocketAddr,
    scenario: &scenario::ExchangeScenario,
    tokens: &BTreeMap<String, String>,
    pool: &sqlx::PgPool,
) -> anyhow::Result<exchange::ExchangeOutcome> {
    let loaded =
        crate::exchange::population::load_csv(pool, scenario::BUNDLED_POPULATION.as_bytes())
            .await
            .context("loading the demo population register failed")?;
    println!("population register: {loaded} people loaded");
    let client = client::ApiClient::new(format!("http://{address}"));
    exchange::run(&client, scenario, tokens).await
}

fn print_exchange(outcome: &exchange::ExchangeOutcome) {
    println!(
        "information exchange: {} requests, {} subjects verified: {} items matched, {} mismatched, {} not found",
        outcome.requests, outcome.subjects, outcome.matches, outcome.mismatches, outcome.not_found
    );
    println!(
        "  feedback on time: {}, late: {}; handed over and filed: {}",
        outcome.on_time, outcome.late, outcome.filed
    );
    for difference in &outcome.differences {
        println!("MISMATCH: {difference}");
    }
}

fn arrivals_len(scenario: &Scenario) -> usize {
    scenario
        .situations
        .iter()
        .map(|situation| situation.count as usize)
        .sum::<usize>()
        .max(1)
}

/// Returns Monday to Friday of the month; the scenario month has no public holiday.
fn working_days(month: &str) -> anyhow::Result<Vec<NaiveDate>> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .with_context(|| format!("month {month:?} is not YYYY-MM"))?;
    let days: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|day| day.month() == first.month())
        .filter(|day| day.weekday().number_from_monday() <= 5)
        .collect();
    Ok(days)
}

async fn wait_for_projection(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lag = projections::projector::lag(pool).await?;
        if lag.behind == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "projection still {} events behind after 60 s",
            lag.behind
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn print_summary(
    pool: &sqlx::PgPool,
    outcome: &RunOutcome,
    elapsed: Duration,
) -> anyhow::Result<()> {
    let summary = projections::summary::summary(pool).await?;
    println!();
    println!(
        "month of station work: {} applications, {} HTTP commands in {:.1} s",
        summary.applications,
        outcome.commands,
        elapsed.as_secs_f64()
    );
    println!("issued per kind:");
    for (kind, count) in &summary.issued_per_kind {
        println!("  {kind:<28} {count:>4}");
    }
    println!("  (of which transitional: {})", summary.transitional_issued);
    println!("refused per principle:");
    for (principle, count) in &summary.refused_per_principle {
        println!("  {principle:<28} {count:>4}");
    }
    println!(
        "refusals with explanation and referral: {} of {}",
        summary.refusals_explained, summary.refusals
    );
    println!(
        "screening overridden with justification: {}",
        summary.overridden
    );
    println!("referred to unit verification: {}", summary.referred);
    println!("withdrawn by the applicant: {}", summary.withdrawn);
    println!("still open: {}", summary.open);
    println!(
        "bad requests rejected with their error and nothing recorded: {}",
        outcome.rejected
    );
    println!(
        "public certificate checks answered: {}",
        outcome.public_checks
    );
    println!("criminal-record checks by final status:");
    for (status, count) in &outcome.criminal_records {
        println!("  {status:<40} {count:>4}");
    }
    for mismatch in &outcome.mismatches {
        println!("MISMATCH: {mismatch}");
    }
    Ok(())
}
