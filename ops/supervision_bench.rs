//! `zhengming-supervision-bench`: times the rebuild of the findings projection over real
//! application histories, and the compliance report over a province-year of projection rows.
//! Results go to `docs/benchmarks.md`. The projection lag under command load is measured by
//! `zhengming-bench` (`ops/bench.rs`).
//!
//! It needs a PostgreSQL server whose user may create databases. Each part creates its own
//! database and drops it at its end, unless `--keep-database` is given.

use aggregates::application::ApplicationServices;
use anyhow::Context;
use clap::Parser;
use sqlx::Connection;
use zhengming::database::Database;
use zhengming::server::load_policy;

#[path = "compliance_bench.rs"]
mod compliance_bench;
#[path = "event_rows.rs"]
mod event_rows;
#[path = "province.rs"]
mod province;
#[path = "supervision_history.rs"]
mod supervision_history;

use compliance_bench::{REPORT_PATH, ReportFigures, median};
use supervision_history::RebuildFigures;

/// Benchmark of the supervision projection and the compliance report.
#[derive(Parser)]
struct Settings {
    /// PostgreSQL server whose user may create databases.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Complete applications to write as events for the rebuild (about 4.6 events each, and
    /// a read of the history of one in four);
    /// 0 skips the rebuild.
    #[arg(long, default_value_t = 44_000)]
    applications: u64,
    /// Rows of `application_view` for the compliance report; 0 skips the report.
    #[arg(long, default_value_t = 2_000_000)]
    report_applications: u64,
    /// Timed requests of the report in each format.
    #[arg(long, default_value_t = 5)]
    report_runs: usize,
    /// Leave the benchmark databases in place, for inspecting query plans.
    #[arg(long)]
    keep_database: bool,
    /// Markdown file the results are appended to.
    #[arg(long, default_value = "docs/benchmarks.md")]
    output: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let rebuild = if settings.applications > 0 {
        let database = BenchDatabase::create(&settings.database_url, "rebuild").await?;
        let before = load_average();
        let result = run_rebuild(&database.database, &settings).await;
        let after = load_average();
        database.finish(&settings).await?;
        Some((result?, before, after))
    } else {
        None
    };
    let report = if settings.report_applications > 0 {
        let database = BenchDatabase::create(&settings.database_url, "report").await?;
        let before = load_average();
        let result = run_report(&database.database, &settings).await;
        let after = load_average();
        database.finish(&settings).await?;
        Some((result?, before, after))
    } else {
        None
    };
    let text = render(&settings, rebuild.as_ref(), report.as_ref());
    print!("{text}");
    append(&settings.output, &text)
}

async fn run_rebuild(database: &Database, settings: &Settings) -> anyhow::Result<RebuildFigures> {
    let services = ApplicationServices {
        policies: std::sync::Arc::new(load_policy(None)?),
    };
    let stations = province::station_codes(&province::cities());
    supervision_history::run(&database.pool, &services, &stations, settings.applications).await
}

async fn run_report(database: &Database, settings: &Settings) -> anyhow::Result<ReportFigures> {
    compliance_bench::run(
        database,
        load_policy(None)?,
        &province::cities(),
        settings.report_applications,
        settings.report_runs,
    )
    .await
}

/// A database this run created on the server.
struct BenchDatabase {
    name: String,
    admin_url: String,
    database: Database,
}

impl BenchDatabase {
    /// Creates database `zhengming_bench_<part>_<pid>` and applies the migrations; drops it
    /// again when that fails.
    async fn create(url: &str, part: &str) -> anyhow::Result<BenchDatabase> {
        let name = format!("zhengming_bench_{part}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(url).await.context(
            "connecting to DATABASE_URL failed; check that the server runs and the URL is right",
        )?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name} failed"))?;
        let (base, _) = url
            .rsplit_once('/')
            .context("DATABASE_URL names no database")?;
        let dir = tempfile::tempdir()?;
        match Database::open(Some(&format!("{base}/{name}")), dir.path(), 40).await {
            Ok(database) => Ok(BenchDatabase {
                name,
                admin_url: url.to_string(),
                database,
            }),
            Err(error) => {
                drop_database(url, &name).await?;
                Err(error)
            }
        }
    }

    /// Closes the pool and drops the database, unless the settings keep it.
    async fn finish(self, settings: &Settings) -> anyhow::Result<()> {
        self.database.close().await;
        if settings.keep_database {
            eprintln!("kept database {}", self.name);
            return Ok(());
        }
        drop_database(&self.admin_url, &self.name).await
    }
}

async fn drop_database(url: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .with_context(|| format!("dropping database {name} failed"))?;
    Ok(())
}

/// Returns the 1, 5 and 15 minute load averages from `/proc/loadavg`, as `uptime` shows them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "unknown".into())
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
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

type Measured<T> = (T, String, String);

fn render(
    settings: &Settings,
    rebuild: Option<&Measured<RebuildFigures>>,
    report: Option<&Measured<ReportFigures>>,
) -> String {
    let mut text = format!(
        "\n## Supervision: PostgreSQL server (local, 127.0.0.1), {date}\n\nMachine: {machine}. Build: release. Command: `cargo run --release --no-default-features --bin zhengming-supervision-bench -- --applications {applications} --report-applications {report_applications} --report-runs {runs}` with `DATABASE_URL`.\n\n\
         | figure | measured | target | |\n|---|---|---|---|\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        machine = machine(),
        applications = settings.applications,
        report_applications = settings.report_applications,
        runs = settings.report_runs,
    );
    if let Some((figures, before, after)) = rebuild {
        let rate = |events: usize, seconds: f64| events as f64 / seconds;
        let supervision_rate = rate(figures.supervision_events, figures.supervision_seconds);
        text.push_str(&format!(
            "| findings rebuild (`projections::supervision::rebuild`, {events} events of {applications} applications, load average {before} before, {after} after) | {supervision_rate:.0} events per second ({supervision:.1} s) | at least 20,000 per second | {verdict} |\n\
             | application-view rebuild (`projections::projector::rebuild`) | {view_rate:.0} events per second ({view:.1} s) | | |\n\
             | findings after the rebuild | {findings} | | |\n\
             | writing the histories (aggregate, hash chain, bulk insert) | {load_rate:.0} events per second ({load:.1} s) | | |\n",
            events = figures.supervision_events,
            applications = figures.applications,
            supervision = figures.supervision_seconds,
            verdict = verdict(supervision_rate >= 20_000.0),
            view_rate = rate(figures.applications_events, figures.applications_seconds),
            view = figures.applications_seconds,
            findings = supervision_history::findings_text(&figures.findings),
            load_rate = rate(figures.events as usize, figures.load_seconds),
            load = figures.load_seconds,
        ));
    }
    if let Some((figures, before, after)) = report {
        let json_median = median(&figures.json_seconds);
        let max = |seconds: &[f64]| seconds.iter().copied().fold(f64::NAN, f64::max);
        let each = |seconds: &[f64]| {
            let texts: Vec<String> = seconds
                .iter()
                .map(|second| format!("{second:.2}"))
                .collect();
            texts.join(", ")
        };
        let json_max = max(&figures.json_seconds);
        let csv_median = median(&figures.csv_seconds);
        let csv_max = max(&figures.csv_seconds);
        text.push_str(&format!(
            "| compliance report, JSON (`{REPORT_PATH}`, {rows} applications and {findings} findings over {stations} stations, {runs} runs, load average {before} before, {after} after) | median {json_median:.2} s, max {json_max:.2} s (runs: {json_each} s) | under 2 s | {json_verdict} |\n\
             | compliance report, CSV (`&format=csv`, same runs) | median {csv_median:.2} s, max {csv_max:.2} s (runs: {csv_each} s) | under 2 s | {csv_verdict} |\n\
             | applications counted by the report | {reported} | | |\n\
             | filling the projection tables in SQL (not the projector) | {fill:.1} s | | |\n",
            rows = figures.applications,
            findings = figures.findings,
            stations = figures.stations,
            runs = figures.json_seconds.len(),
            json_verdict = verdict(json_max < 2.0),
            csv_verdict = verdict(csv_max < 2.0),
            json_each = each(&figures.json_seconds),
            csv_each = each(&figures.csv_seconds),
            reported = figures.reported_applications,
            fill = figures.fill_seconds,
        ));
    }
    text
}

fn append(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} failed", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
