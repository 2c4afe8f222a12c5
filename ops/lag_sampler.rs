//! Projection lag while `zhengming-bench` drives commands: every 100 ms, for each projection,
//! the committed events it has yet to apply and the age of its oldest event not yet projected.

use std::time::Duration;

use projections::projector::{APPLICATIONS, lag_of};
use projections::supervision::SUPERVISION;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const INTERVAL: Duration = Duration::from_millis(100);

/// Lag of one projection at one instant.
#[derive(Clone, Copy, Default)]
struct Sample {
    positions: i64,
    /// Seconds since the oldest event not yet projected was written; 0 when caught up.
    seconds: f64,
}

/// Maximum and 95th percentile of the lag samples of one projection.
pub struct Distribution {
    pub max_positions: i64,
    pub p95_positions: i64,
    pub max_seconds: f64,
    pub p95_seconds: f64,
}

/// The lag samples of both projections.
pub struct LagFigures {
    pub samples: usize,
    pub supervision: Distribution,
    pub applications: Distribution,
}

/// A running sampler; [`LagSampler::finish`] stops it and returns the figures.
pub struct LagSampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<Vec<(Sample, Sample)>>>,
}

impl LagSampler {
    /// Starts sampling both projections on `pool`.
    pub fn start(pool: PgPool) -> LagSampler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut ticks = tokio::time::interval(INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !*stopped.borrow() {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => break,
                }
                let supervision = sample(&pool, SUPERVISION).await?;
                let applications = sample(&pool, APPLICATIONS).await?;
                samples.push((supervision, applications));
            }
            Ok(samples)
        });
        LagSampler { stop, task }
    }

    /// Stops sampling and returns the figures.
    ///
    /// # Errors
    /// Fails when a sample could not be read.
    pub async fn finish(self) -> anyhow::Result<LagFigures> {
        let _ = self.stop.send(true);
        let samples = self.task.await??;
        let supervision: Vec<Sample> = samples.iter().map(|pair| pair.0).collect();
        let applications: Vec<Sample> = samples.iter().map(|pair| pair.1).collect();
        Ok(LagFigures {
            samples: samples.len(),
            supervision: distribution(&supervision),
            applications: distribution(&applications),
        })
    }
}

async fn sample(pool: &PgPool, projection: &str) -> anyhow::Result<Sample> {
    let lag = lag_of(pool, projection).await?;
    // The oldest event after the checkpoint in commit order is the oldest one the projection
    // has not applied.
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM clock_timestamp() - min(recorded_at))::float8 FROM events
          WHERE (transaction_id, global_position) > ($1, $2)",
    )
    .bind(lag.checkpoint.transaction_id)
    .bind(lag.checkpoint.global_position)
    .fetch_one(pool)
    .await?;
    Ok(Sample {
        positions: lag.behind,
        seconds: seconds.unwrap_or(0.0),
    })
}

/// Returns the value at the 95th percentile (nearest rank) of sorted `values`.
fn p95<T: Copy + Default>(values: &[T]) -> T {
    if values.is_empty() {
        return T::default();
    }
    let rank = (values.len() * 95).div_ceil(100);
    values[rank.max(1) - 1]
}

fn distribution(samples: &[Sample]) -> Distribution {
    let mut positions: Vec<i64> = samples.iter().map(|sample| sample.positions).collect();
    let mut seconds: Vec<f64> = samples.iter().map(|sample| sample.seconds).collect();
    positions.sort_unstable();
    seconds.sort_by(f64::total_cmp);
    Distribution {
        max_positions: positions.last().copied().unwrap_or(0),
        p95_positions: p95(&positions),
        max_seconds: seconds.last().copied().unwrap_or(0.0),
        p95_seconds: p95(&seconds),
    }
}

/// Renders the figures as rows of the benchmark table; the target is a lag under one second.
pub fn render_rows(figures: &LagFigures) -> String {
    let row = |name: &str, lag: &Distribution| {
        format!(
            "| {name} lag during the command run ({samples} samples, one every 100 ms) | max {max_seconds:.2} s and {max_positions} events, 95th percentile {p95_seconds:.2} s and {p95_positions} events | under 1 s | {verdict} |\n",
            samples = figures.samples,
            max_seconds = lag.max_seconds,
            max_positions = lag.max_positions,
            p95_seconds = lag.p95_seconds,
            p95_positions = lag.p95_positions,
            verdict = if lag.max_seconds < 1.0 {
                "meets"
            } else {
                "misses"
            },
        )
    };
    row("findings projection", &figures.supervision)
        + &row("application views", &figures.applications)
}
