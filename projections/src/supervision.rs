//! The supervision projection: findings of the detectors, following the event log in global
//! order with its checkpoint (`supervision`) in the same transaction as its rows.
//!
//! Deadline rules need a notion of "now". Closing events dated after the promised date, and
//! feedback delivered after its deadline, are findings as soon as the event is projected. A
//! case still open after its date is found by [`sweep`], which the running projector calls
//! with today's date in China Standard Time once it has caught up with the log, and at most
//! once a minute. A later closing event dated on or before the date removes that finding,
//! because a paper decision may be entered days after it was made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aggregates::application::ApplicationEvent;
use aggregates::application_reads::ApplicationReadEvent;
use aggregates::exchange::request::RequestEvent;
use aggregates::policy::PolicyBook;
use aggregates::record_check::RecordCheckEvent;
use aggregates::unit_visit::UnitVisitEvent;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::watch;

use crate::projector::{self, COMMIT_ORDER, COMMITTED_AFTER, Checkpoint, Lag, ProjectionError};

pub mod detectors;
#[cfg(test)]
mod tests;

use detectors::{
    ApplicationCase, EventContext, EventRef, ExchangeCase, Finding, RecordCheckCase, Rule,
    UnitVisitCase,
};

/// Name of the supervision projection in `projection_checkpoints`.
pub const SUPERVISION: &str = "supervision";

/// Events applied per transaction by [`run`] and [`catch_up`].
pub const BATCH_SIZE: i64 = 500;

const IDLE_POLL: Duration = Duration::from_millis(100);

/// Minimum time between two sweeps of a running projector.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

const APPLICATION: &str = "application";
/// The reads of an application's personal data, examined as part of the application's case.
const APPLICATION_READS: &str = "application_reads";
const EXCHANGE_REQUEST: &str = "exchange_request";
const RECORD_CHECK: &str = "record_check";
const UNIT_VISIT: &str = "unit_visit";

/// Returns today's date in China Standard Time (UTC+8), the date deadlines are counted in.
pub fn today_in_china() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Applies up to `limit` events after the checkpoint, in one transaction with the new
/// checkpoint, and returns how many events it read.
///
/// The batch reads the state of every case it touches in one query, applies its events in
/// order in memory, and writes each case and each changed finding once.
///
/// # Errors
/// Fails on a database error or an event that does not deserialize. The transaction then
/// rolls back, so neither the findings nor the checkpoint of the batch are kept.
pub async fn apply_next_batch(
    pool: &PgPool,
    policies: &PolicyBook,
    limit: i64,
) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    let horizon = projector::read_horizon(&mut *tx).await?;
    let rows = sqlx::query(&format!(
        "SELECT transaction_id, global_position, aggregate_type, aggregate_id, sequence, event_type, payload,
                metadata->>'actor_role' AS actor_role, recorded_at
           FROM events WHERE {COMMITTED_AFTER} ORDER BY {COMMIT_ORDER} LIMIT $4"
    ))
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .bind(horizon)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let Some(last) = rows.last().map(Checkpoint::of) else {
        return Ok(0);
    };

    let relevant: Vec<&PgRow> = rows
        .iter()
        .filter(|row| {
            let aggregate_type: &str = row.get("aggregate_type");
            [
                APPLICATION,
                APPLICATION_READS,
                EXCHANGE_REQUEST,
                RECORD_CHECK,
                UNIT_VISIT,
            ]
            .contains(&aggregate_type)
        })
        .collect();
    let keys: Vec<CaseKey> = relevant.iter().map(|row| case_key(row)).collect();
    let mut cases = load_cases(&mut tx, keys).await?;
    let mut changes: BTreeMap<FindingKey, FindingChange> = BTreeMap::new();
    for row in relevant {
        let position: i64 = row.get("global_position");
        let recorded_at: DateTime<Utc> = row.get("recorded_at");
        let key = case_key(row);
        let context = EventContext {
            at: EventRef {
                aggregate_type: row.get("aggregate_type"),
                aggregate_id: key.1.clone(),
                sequence: row.get("sequence"),
                global_position: position,
                event_type: row.get("event_type"),
            },
            actor_role: row.get("actor_role"),
            recorded_on: (recorded_at + chrono::Duration::hours(8)).date_naive(),
        };
        let payload: serde_json::Value = row.get("payload");
        let decode = |source| ProjectionError::Event { position, source };
        let case = cases
            .get_mut(&key)
            .expect("every case of the batch is loaded");
        let detected = match case {
            CaseState::Application(case) if context.at.aggregate_type == APPLICATION_READS => {
                let event: ApplicationReadEvent =
                    serde_json::from_value(payload).map_err(decode)?;
                detectors::detect_application_read(case, event, &context)
            }
            CaseState::Application(case) => {
                let event: ApplicationEvent = serde_json::from_value(payload).map_err(decode)?;
                detectors::detect_application(case, event, &context, policies)
            }
            CaseState::RecordCheck(case) => {
                let event: RecordCheckEvent = serde_json::from_value(payload).map_err(decode)?;
                detectors::detect_record_check(case, event, &context)
            }
            CaseState::Exchange(case) => {
                let event: RequestEvent = serde_json::from_value(payload).map_err(decode)?;
                detectors::detect_exchange(case, event, &context.at)
            }
            CaseState::UnitVisit(case) => {
                let event: UnitVisitEvent = serde_json::from_value(payload).map_err(decode)?;
                detectors::detect_unit_visit(case, event, &context)
            }
        };
        let (station, unit) = case.place();
        for rule in detected.cleared {
            let finding_key = (key.0.clone(), key.1.clone(), rule.code(), String::new());
            changes.insert(finding_key, FindingChange::Remove);
        }
        for finding in detected.findings {
            let finding_key = (
                key.0.clone(),
                key.1.clone(),
                finding.rule.code(),
                finding.occurrence(),
            );
            let change = FindingChange::Replace {
                station: station.clone(),
                unit: unit.clone(),
                finding,
            };
            changes.insert(finding_key, change);
        }
    }
    store_cases(&mut tx, &cases).await?;
    write_changes(&mut tx, changes).await?;

    projector::save_checkpoint(&mut tx, SUPERVISION, last).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Aggregate type and id of a case.
type CaseKey = (String, String);

/// Returns the case an event belongs to: its own aggregate, or the application whose personal
/// data a read concerns.
fn case_key(row: &PgRow) -> CaseKey {
    let aggregate_type: String = row.get("aggregate_type");
    let aggregate_type = match aggregate_type.as_str() {
        APPLICATION_READS => APPLICATION.to_string(),
        _ => aggregate_type,
    };
    (aggregate_type, row.get("aggregate_id"))
}

/// Aggregate type, aggregate id, rule code and occurrence of a finding.
type FindingKey = (String, String, &'static str, String);

/// The detectors' state of one case while a batch is applied.
enum CaseState {
    // Boxed, since the application state is several times the size of the others.
    Application(Box<ApplicationCase>),
    Exchange(ExchangeCase),
    RecordCheck(RecordCheckCase),
    UnitVisit(UnitVisitCase),
}

impl CaseState {
    /// Reads a stored state, or starts a new case when none is stored.
    fn decode(aggregate_type: &str, state: Option<serde_json::Value>) -> serde_json::Result<Self> {
        fn read<T: DeserializeOwned + Default>(
            state: Option<serde_json::Value>,
        ) -> serde_json::Result<T> {
            state.map_or_else(|| Ok(T::default()), serde_json::from_value)
        }
        Ok(match aggregate_type {
            APPLICATION => CaseState::Application(Box::new(read(state)?)),
            RECORD_CHECK => CaseState::RecordCheck(read(state)?),
            UNIT_VISIT => CaseState::UnitVisit(read(state)?),
            _ => CaseState::Exchange(read(state)?),
        })
    }

    fn encode(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            CaseState::Application(case) => serde_json::to_value(case),
            CaseState::Exchange(case) => serde_json::to_value(case),
            CaseState::RecordCheck(case) => serde_json::to_value(case),
            CaseState::UnitVisit(case) => serde_json::to_value(case),
        }
    }

    fn due_on(&self) -> Option<NaiveDate> {
        match self {
            CaseState::Application(case) => case.due_on(),
            CaseState::Exchange(case) => case.due_on(),
            CaseState::RecordCheck(case) => case.due_on(),
            CaseState::UnitVisit(_) => None,
        }
    }

    /// Returns the station of an application's, record check's or unit visit's findings, or the
    /// unit of an exchange request's.
    fn place(&self) -> (Option<String>, Option<String>) {
        match self {
            CaseState::Application(case) => (Some(case.station.clone()), None),
            CaseState::RecordCheck(case) => (Some(case.station.clone()), None),
            CaseState::UnitVisit(case) => (Some(case.station.clone()), None),
            CaseState::Exchange(case) => (None, Some(case.unit.clone())),
        }
    }
}

/// The last change a batch makes to one finding.
enum FindingChange {
    /// An event proved the finding. It replaces one the sweep recorded for the same rule, so
    /// that a rebuild, which reads the event before any sweep, ends equal.
    Replace {
        station: Option<String>,
        unit: Option<String>,
        finding: Finding,
    },
    /// A later event cleared the rule's finding.
    Remove,
}

/// Reads the stored state of every case in `keys` in one query; cases with none start new.
async fn load_cases(
    tx: &mut Transaction<'_, Postgres>,
    keys: Vec<CaseKey>,
) -> sqlx::Result<HashMap<CaseKey, CaseState>> {
    let (types, ids): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    let stored: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, state FROM supervision_cases
          WHERE (aggregate_type, aggregate_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
    )
    .bind(&types)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    let mut states: HashMap<CaseKey, serde_json::Value> = stored
        .into_iter()
        .map(|(aggregate_type, id, state)| ((aggregate_type, id), state))
        .collect();
    let mut cases = HashMap::with_capacity(keys.len());
    for key in keys {
        if cases.contains_key(&key) {
            continue;
        }
        let state = CaseState::decode(&key.0, states.remove(&key))
            .map_err(|error| sqlx::Error::Decode(error.into()))?;
        cases.insert(key, state);
    }
    Ok(cases)
}

/// Writes the state and open deadline of every case of the batch in one statement.
async fn store_cases(
    tx: &mut Transaction<'_, Postgres>,
    cases: &HashMap<CaseKey, CaseState>,
) -> sqlx::Result<()> {
    if cases.is_empty() {
        return Ok(());
    }
    let mut types = Vec::with_capacity(cases.len());
    let mut ids = Vec::with_capacity(cases.len());
    let mut states = Vec::with_capacity(cases.len());
    let mut due = Vec::with_capacity(cases.len());
    for ((aggregate_type, id), case) in cases {
        types.push(aggregate_type.clone());
        ids.push(id.clone());
        states.push(
            case.encode()
                .map_err(|error| sqlx::Error::Encode(error.into()))?,
        );
        due.push(case.due_on());
    }
    sqlx::query(
        "INSERT INTO supervision_cases (aggregate_type, aggregate_id, state, due_on)
         SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::date[])
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET state = EXCLUDED.state, due_on = EXCLUDED.due_on",
    )
    .bind(types)
    .bind(ids)
    .bind(states)
    .bind(due)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the cleared findings and writes the proved ones, one statement each.
async fn write_changes(
    tx: &mut Transaction<'_, Postgres>,
    changes: BTreeMap<FindingKey, FindingChange>,
) -> sqlx::Result<()> {
    let mut removed: (Vec<String>, Vec<String>, Vec<&str>, Vec<String>) = Default::default();
    let mut replaced = FindingColumns::default();
    for ((aggregate_type, id, rule, occurrence), change) in changes {
        match change {
            FindingChange::Remove => {
                removed.0.push(aggregate_type);
                removed.1.push(id);
                removed.2.push(rule);
                removed.3.push(occurrence);
            }
            FindingChange::Replace {
                station,
                unit,
                finding,
            } => {
                let evidence = serde_json::to_value(&finding.evidence)
                    .map_err(|error| sqlx::Error::Encode(error.into()))?;
                replaced.types.push(aggregate_type);
                replaced.ids.push(id);
                replaced.rules.push(rule);
                replaced.occurrences.push(occurrence);
                replaced.stations.push(station);
                replaced.units.push(unit);
                replaced.officers.push(finding.officer);
                replaced.dates.push(finding.occurred_on);
                replaced.details.push(finding.detail);
                replaced.evidence.push(evidence);
            }
        }
    }
    if !removed.0.is_empty() {
        sqlx::query(
            "DELETE FROM supervision_findings
              WHERE (aggregate_type, aggregate_id, rule, occurrence) IN
                    (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]))",
        )
        .bind(removed.0)
        .bind(removed.1)
        .bind(removed.2)
        .bind(removed.3)
        .execute(&mut **tx)
        .await?;
    }
    if !replaced.types.is_empty() {
        sqlx::query(
            "INSERT INTO supervision_findings
                    (aggregate_type, aggregate_id, rule, occurrence, station_code, unit_code, officer_id,
                     occurred_on, detail, evidence)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                                  $7::text[], $8::date[], $9::text[], $10::jsonb[])
             ON CONFLICT (aggregate_type, aggregate_id, rule, occurrence) DO UPDATE
                SET officer_id = EXCLUDED.officer_id, occurred_on = EXCLUDED.occurred_on,
                    detail = EXCLUDED.detail, evidence = EXCLUDED.evidence",
        )
        .bind(replaced.types)
        .bind(replaced.ids)
        .bind(replaced.rules)
        .bind(replaced.occurrences)
        .bind(replaced.stations)
        .bind(replaced.units)
        .bind(replaced.officers)
        .bind(replaced.dates)
        .bind(replaced.details)
        .bind(replaced.evidence)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The columns of the findings a batch writes, one vector per column.
#[derive(Default)]
struct FindingColumns {
    types: Vec<String>,
    ids: Vec<String>,
    rules: Vec<&'static str>,
    occurrences: Vec<String>,
    stations: Vec<Option<String>>,
    units: Vec<Option<String>>,
    officers: Vec<String>,
    dates: Vec<NaiveDate>,
    details: Vec<String>,
    evidence: Vec<serde_json::Value>,
}

/// Station of an application's findings, or unit of an exchange request's.
struct Place<'a> {
    station: Option<&'a str>,
    unit: Option<&'a str>,
}

async fn insert_finding(
    tx: &mut Transaction<'_, Postgres>,
    aggregate_type: &str,
    id: &str,
    place: &Place<'_>,
    finding: &Finding,
    replace: bool,
) -> sqlx::Result<bool> {
    let conflict = if replace {
        "DO UPDATE SET officer_id = EXCLUDED.officer_id, occurred_on = EXCLUDED.occurred_on,
                       detail = EXCLUDED.detail, evidence = EXCLUDED.evidence"
    } else {
        "DO NOTHING"
    };
    let evidence = serde_json::to_value(&finding.evidence)
        .map_err(|error| sqlx::Error::Encode(error.into()))?;
    let result = sqlx::query(&format!(
        "INSERT INTO supervision_findings
                (aggregate_type, aggregate_id, rule, station_code, unit_code, officer_id, occurred_on, detail, evidence)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (aggregate_type, aggregate_id, rule, occurrence) {conflict}"
    ))
    .bind(aggregate_type)
    .bind(id)
    .bind(finding.rule.code())
    .bind(place.station)
    .bind(place.unit)
    .bind(&finding.officer)
    .bind(finding.occurred_on)
    .bind(&finding.detail)
    .bind(evidence)
    .execute(&mut **tx)
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Records deadline findings of cases still open after their date, as of `today`, and
/// returns how many it added. Returns `None` when the projection trails the log, because an
/// event not yet projected may close a case on time.
///
/// # Errors
/// Fails on a database error or a stored case that does not deserialize.
pub async fn sweep(pool: &PgPool, today: NaiveDate) -> Result<Option<usize>, ProjectionError> {
    let mut tx = pool.begin().await?;
    let checkpoint = projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    let trailing: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1, $2))",
    )
    .bind(checkpoint.transaction_id)
    .bind(checkpoint.global_position)
    .fetch_one(&mut *tx)
    .await?;
    if trailing {
        return Ok(None);
    }
    let rows: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT c.aggregate_type, c.aggregate_id, c.state FROM supervision_cases c
          WHERE c.due_on < $1
            AND NOT EXISTS (SELECT 1 FROM supervision_findings f
                             WHERE f.aggregate_type = c.aggregate_type AND f.aggregate_id = c.aggregate_id
                               AND f.rule IN ('overdue', 'feedback_late', 'objection_overdue'))",
    )
    .bind(today)
    .fetch_all(&mut *tx)
    .await?;
    let mut added = 0;
    for (aggregate_type, id, state) in rows {
        let decode = |error: serde_json::Error| sqlx::Error::Decode(error.into());
        let inserted = if aggregate_type == APPLICATION {
            let case: ApplicationCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: Some(&case.station),
                unit: None,
            };
            // The case is swept once, so both deadline findings are decided now.
            let mut inserted = 0;
            for finding in [
                detectors::overdue_open(&case, today),
                detectors::approval_overdue_open(&case, today),
            ]
            .into_iter()
            .flatten()
            {
                let added =
                    insert_finding(&mut tx, APPLICATION, &id, &place, &finding, false).await?;
                inserted += usize::from(added);
            }
            inserted
        } else if aggregate_type == RECORD_CHECK {
            let case: RecordCheckCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: Some(&case.station),
                unit: None,
            };
            match detectors::objection_missing(&case, today) {
                Some(finding) => usize::from(
                    insert_finding(&mut tx, RECORD_CHECK, &id, &place, &finding, false).await?,
                ),
                None => 0,
            }
        } else {
            let case: ExchangeCase = serde_json::from_value(state).map_err(decode)?;
            let place = Place {
                station: None,
                unit: Some(&case.unit),
            };
            match detectors::feedback_missing(&case, today) {
                Some(finding) => usize::from(
                    insert_finding(&mut tx, EXCHANGE_REQUEST, &id, &place, &finding, false).await?,
                ),
                None => 0,
            }
        };
        added += inserted;
    }
    tx.commit().await?;
    Ok(Some(added))
}

/// Applies batches until every committed event is applied and returns the number of events
/// read.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn catch_up(pool: &PgPool, policies: &PolicyBook) -> Result<usize, ProjectionError> {
    projector::catch_up_with(pool, SUPERVISION, || {
        apply_next_batch(pool, policies, BATCH_SIZE)
    })
    .await
}

/// Empties the findings, the case states and the checkpoint, applies the whole log again and
/// sweeps as of `today`; returns the number of events read.
///
/// # Errors
/// See [`apply_next_batch`].
pub async fn rebuild(
    pool: &PgPool,
    policies: &PolicyBook,
    today: NaiveDate,
) -> Result<usize, ProjectionError> {
    let mut tx = pool.begin().await?;
    projector::lock_checkpoint(&mut tx, SUPERVISION).await?;
    sqlx::query("DELETE FROM supervision_findings")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM supervision_cases")
        .execute(&mut *tx)
        .await?;
    projector::save_checkpoint(&mut tx, SUPERVISION, Checkpoint::default()).await?;
    tx.commit().await?;
    let applied = catch_up(pool, policies).await?;
    sweep(pool, today).await?;
    Ok(applied)
}

/// Returns the checkpoint of the supervision projection and the head of the log.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn lag(pool: &PgPool) -> sqlx::Result<Lag> {
    projector::lag_of(pool, SUPERVISION).await
}

/// Runs the projection until `shutdown` turns true, polling when idle and sweeping deadlines
/// once caught up. A failed batch is logged and retried after a pause; it never advances the
/// checkpoint.
pub async fn run(pool: PgPool, policies: Arc<PolicyBook>, mut shutdown: watch::Receiver<bool>) {
    tracing::info!(projection = SUPERVISION, "projector started");
    let mut failures: u32 = 0;
    let mut last_sweep: Option<Instant> = None;
    while !*shutdown.borrow() {
        let pause = match apply_next_batch(&pool, &policies, BATCH_SIZE).await {
            Ok(0) => {
                if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                    match sweep(&pool, today_in_china()).await {
                        Ok(Some(_)) => last_sweep = Some(Instant::now()),
                        Ok(None) => {}
                        Err(error) => {
                            tracing::error!(projection = SUPERVISION, cause = %error, "deadline sweep failed; retrying");
                        }
                    }
                }
                IDLE_POLL
            }
            Ok(_) => {
                failures = 0;
                Duration::ZERO
            }
            Err(error) => {
                failures += 1;
                // Repeats of one failure are logged once every 50 attempts.
                if failures % 50 == 1 {
                    tracing::error!(projection = SUPERVISION, cause = %error, failures, "projection batch failed; retrying");
                }
                Duration::from_secs(1)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!(projection = SUPERVISION, "projector stopped");
}

/// Returns every rule code with its category (`inaction` or `misconduct`).
pub fn rule_categories() -> Vec<(&'static str, &'static str)> {
    Rule::ALL
        .iter()
        .map(|rule| (rule.code(), rule.category()))
        .collect()
}

/// Returns every rule code, for validating a `rule` filter.
pub fn rule_codes() -> Vec<&'static str> {
    Rule::ALL.iter().map(|rule| rule.code()).collect()
}
