//! `zhengming-exchange-bench`: reads a generated subject batch into `exchange_subjects` and
//! verifies it against a generated population register, then appends the figures to
//! `docs/benchmarks.md`.
//!
//! It calls the server's intake and verification code directly, without HTTP, and feeds the
//! batch as a stream of small chunks generated on the fly, so the process's peak memory is that
//! of the intake and verification themselves. The peak is reset before the batch is read
//! (`/proc/self/clear_refs`), so setting up the register does not count.

use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use clap::Parser;
use futures_util::stream;
use sqlx::Connection;
use zhengming::database::Database;
use zhengming::exchange::batch::{self, OnInvalidRows};
use zhengming::exchange::verification;

/// Benchmark of exchange verification.
#[derive(Parser)]
struct Settings {
    /// PostgreSQL server whose user may create databases; without it the embedded database runs.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Subjects in the batch; nine in ten are in the register.
    #[arg(long, default_value_t = 100_000)]
    subjects: u64,
    /// Markdown file the results are appended to.
    #[arg(long, default_value = "docs/benchmarks.md")]
    output: std::path::PathBuf,
}

/// Weights of the GB 11643-1999 check character.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";
const ITEMS: [&str; 4] = ["name", "sex", "date_of_birth", "registration_status"];
const SUBJECTS_PER_CHUNK: u64 = 500;

/// Returns the `index`-th synthetic ID number: address 220102, a birth date counted from
/// 1950-01-01 and a sequence number, so that each index gives a different valid number.
fn id_number(index: u64) -> (String, String, &'static str) {
    let day = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).expect("valid date")
        + chrono::Duration::days((index / 1000) as i64);
    let body = format!("220102{}{:03}", day.format("%Y%m%d"), index % 1000);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = CHECK[(sum % 11) as usize] as char;
    let sex = if (index % 1000) % 2 == 1 {
        "male"
    } else {
        "female"
    };
    (
        format!("{body}{check}"),
        day.format("%Y-%m-%d").to_string(),
        sex,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let dir = tempfile::tempdir()?;
    let name = format!("zhengming_exchange_bench_{}", std::process::id());
    let (database, label) = match &settings.database_url {
        Some(url) => {
            let mut admin = sqlx::PgConnection::connect(url).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await?;
            let (base, _) = url
                .rsplit_once('/')
                .context("DATABASE_URL names no database")?;
            let database = Database::open(Some(&format!("{base}/{name}")), dir.path(), 4).await?;
            (database, "PostgreSQL server (local, 127.0.0.1)")
        }
        None => (
            Database::open(None, dir.path(), 1).await?,
            "embedded PGlite",
        ),
    };
    let result = run(&settings, &database).await;
    database.close().await;
    if let Some(url) = &settings.database_url {
        let mut admin = sqlx::PgConnection::connect(url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
            .execute(&mut admin)
            .await?;
    }
    let (intake_seconds, verify_seconds, peak_mb) = result?;
    let report = render(&settings, label, intake_seconds, verify_seconds, peak_mb);
    print!("{report}");
    let mut text = std::fs::read_to_string(&settings.output).unwrap_or_default();
    text.push_str(&report);
    std::fs::write(&settings.output, text)?;
    Ok(())
}

async fn run(settings: &Settings, database: &Database) -> anyhow::Result<(f64, f64, f64)> {
    fill_register(database, settings.subjects).await?;
    // Writing 5 resets the peak resident set size (Linux 4.0 and later).
    std::fs::write("/proc/self/clear_refs", "5").context("resetting the memory peak failed")?;
    let items: Vec<String> = ITEMS.iter().map(|item| item.to_string()).collect();
    let total = settings.subjects;
    let header = stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from(
        "id_number,name,sex,date_of_birth,registration_status\n",
    ))]);
    let rows = stream::iter((0..total.div_ceil(SUBJECTS_PER_CHUNK)).map(move |chunk| {
        let start = chunk * SUBJECTS_PER_CHUNK;
        let mut text = String::new();
        for index in start..(start + SUBJECTS_PER_CHUNK).min(total) {
            let (id, born, sex) = id_number(index);
            // Every hundredth subject claims a wrong name.
            let name = if index % 100 == 7 {
                "错名".to_string()
            } else {
                format!("名{index}")
            };
            text.push_str(&format!("{id},{name},{sex},{born},active\n"));
        }
        Ok(Bytes::from(text))
    }));
    let body = futures_util::StreamExt::chain(header, rows);
    let started = Instant::now();
    let intake = batch::ingest(
        &database.pool,
        "bench",
        &items,
        OnInvalidRows::RejectBatch,
        body,
    )
    .await?;
    let intake_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        intake.recorded && intake.summary.subjects == total,
        "intake lost rows"
    );
    let started = Instant::now();
    let summary =
        verification::verify(&database.pool, "bench", &items, &intake.summary.rows_sha256).await?;
    let verify_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(summary.subjects == total, "verification lost rows");
    Ok((intake_seconds, verify_seconds, peak_memory_mb()))
}

/// Inserts the register rows of nine in ten subjects, in chunks.
async fn fill_register(database: &Database, subjects: u64) -> anyhow::Result<()> {
    let mut index = 0;
    while index < subjects {
        let end = (index + 5_000).min(subjects);
        let (mut ids, mut names, mut sexes, mut births) = (vec![], vec![], vec![], vec![]);
        for i in (index..end).filter(|i| i % 10 != 3) {
            let (id, born, sex) = id_number(i);
            ids.push(id);
            names.push(format!("名{i}"));
            sexes.push(sex.to_string());
            births.push(born);
        }
        sqlx::query(
            "INSERT INTO population_register
             SELECT id, name, '', sex, '汉族', born, '长春市', '吉林省', '长春市南关区', '', 'active', 'none'
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, name, sex, born)",
        )
        .bind(&ids)
        .bind(&names)
        .bind(&sexes)
        .bind(&births)
        .execute(&database.pool)
        .await?;
        index = end;
    }
    Ok(())
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
    format!("{cpu}, {cores} cores")
}

fn render(settings: &Settings, label: &str, intake: f64, verify: f64, peak_mb: f64) -> String {
    let subjects = settings.subjects as f64;
    let rate = subjects / (intake + verify);
    let date = chrono::Utc::now().format("%Y-%m-%d");
    let environment = if settings.database_url.is_some() {
        "with"
    } else {
        "without"
    };
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "\n## Exchange verification, {label}, {date}\n\n\
         Machine: {}. Build: {build}. Command: `cargo run --release --no-default-features --bin zhengming-exchange-bench -- --subjects {}` {environment} `DATABASE_URL`.\n\n\
         | figure | measured | target | |\n|---|---|---|---|\n\
         | batch intake ({} subjects, CSV stream to `exchange_subjects`) | {:.0} subjects per second ({intake:.2} s) | | |\n\
         | verification against the register and result-file digest | {:.0} subjects per second ({verify:.2} s) | | |\n\
         | intake and verification together | {rate:.0} subjects per second | at least 20,000 per second on the server | {} |\n\
         | peak memory during intake and verification (process, after reset) | {peak_mb:.0} MB | flat in the batch size | see runs |\n",
        machine(),
        settings.subjects,
        settings.subjects,
        subjects / intake,
        subjects / verify,
        if rate >= 20_000.0 { "meets" } else { "misses" },
    )
}
