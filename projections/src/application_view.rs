//! `application_view` and `certificate_view`: one row per application and per certificate.
//!
//! A batch reads the rows of its applications in one query, applies its events in memory and
//! writes each changed row and each new certificate with one statement per table.

use std::collections::{BTreeSet, HashMap};

use aggregates::application::ApplicationEvent;
use aggregates::policy::Outcome;
use chrono::NaiveDate;
use sqlx::{FromRow, Postgres, Transaction};

/// One row of `application_view`.
#[derive(Clone, Debug, FromRow)]
struct ViewRow {
    application_id: String,
    station_code: String,
    matter: String,
    decision_date: NaiveDate,
    policy_version: Option<String>,
    rule_id: Option<String>,
    outcome: Option<String>,
    kind: Option<String>,
    principle: Option<String>,
    transitional: bool,
    in_transition: bool,
    overridden: bool,
    promised_date: Option<NaiveDate>,
    status: String,
    explanation: Option<String>,
    referral: Option<String>,
    certificate_number: Option<String>,
    closed_on: Option<NaiveDate>,
    last_position: i64,
}

/// One row of `certificate_view`.
struct CertificateRow {
    certificate_number: String,
    application_id: String,
    kind: String,
    station_code: String,
    issued_on: NaiveDate,
}

/// Applies application events, each with its id and global position, in the order given.
///
/// # Errors
/// Fails when the database rejects a statement.
pub async fn apply_batch(
    tx: &mut Transaction<'_, Postgres>,
    events: Vec<(String, i64, ApplicationEvent)>,
) -> sqlx::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = events.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let stored: Vec<ViewRow> =
        sqlx::query_as("SELECT * FROM application_view WHERE application_id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut **tx)
            .await?;
    let mut rows: HashMap<String, ViewRow> = stored
        .into_iter()
        .map(|row| (row.application_id.clone(), row))
        .collect();
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut certificates = Vec::new();
    for (id, position, event) in events {
        if let ApplicationEvent::ApplicationSubmitted {
            matter,
            station,
            decision_date,
            ..
        } = &event
        {
            // A replayed submission leaves the existing row as it is.
            if !rows.contains_key(&id) {
                rows.insert(id.clone(), submitted(&id, station, matter, *decision_date));
            }
        }
        // Events of an application without a row change nothing, as an UPDATE would not.
        let Some(row) = rows.get_mut(&id) else {
            continue;
        };
        if let Some(certificate) = apply(row, event) {
            certificates.push(certificate);
        }
        row.last_position = position;
        changed.insert(id);
    }
    let changed: Vec<&ViewRow> = changed.iter().map(|id| &rows[id]).collect();
    write_rows(tx, &changed).await?;
    write_certificates(tx, &certificates).await
}

fn submitted(id: &str, station: &str, matter: &str, decision_date: NaiveDate) -> ViewRow {
    ViewRow {
        application_id: id.to_string(),
        station_code: station.to_string(),
        matter: matter.to_string(),
        decision_date,
        policy_version: None,
        rule_id: None,
        outcome: None,
        kind: None,
        principle: None,
        transitional: false,
        in_transition: false,
        overridden: false,
        promised_date: None,
        status: "submitted".into(),
        explanation: None,
        referral: None,
        certificate_number: None,
        closed_on: None,
        last_position: 0,
    }
}

/// Applies one event to its application's row; returns the certificate an issuance creates.
fn apply(row: &mut ViewRow, event: ApplicationEvent) -> Option<CertificateRow> {
    match event {
        ApplicationEvent::ApplicationScreened { decision } => {
            row.policy_version = Some(decision.policy_version);
            row.rule_id = Some(decision.rule_id);
            row.in_transition = decision.in_transition_window;
            row.promised_date = decision.promised_date;
            set_outcome(row, &decision.outcome, false);
        }
        ApplicationEvent::ScreeningOverridden {
            outcome,
            promised_date,
            ..
        } => {
            if promised_date.is_some() {
                row.promised_date = promised_date;
            }
            set_outcome(row, &outcome, true);
        }
        ApplicationEvent::ApplicationRefused {
            principle,
            referral,
            explanation,
            refused_on,
            ..
        } => {
            row.status = "refused".into();
            row.principle = Some(principle);
            row.referral = Some(referral);
            row.explanation = Some(explanation);
            row.closed_on = Some(refused_on);
        }
        ApplicationEvent::CertificateIssued {
            certificate_number,
            kind,
            station,
            issued_on,
            ..
        } => {
            row.status = "issued".into();
            row.certificate_number = Some(certificate_number.clone());
            row.closed_on = Some(issued_on);
            return Some(CertificateRow {
                certificate_number,
                application_id: row.application_id.clone(),
                kind,
                station_code: station,
                issued_on,
            });
        }
        ApplicationEvent::ApplicationWithdrawn { withdrawn_on, .. } => {
            row.status = "withdrawn".into();
            row.closed_on = Some(withdrawn_on);
        }
        ApplicationEvent::ApplicationSubmitted { .. }
        | ApplicationEvent::EvidenceChecked { .. }
        | ApplicationEvent::StubSigned { .. }
        | ApplicationEvent::LeaderApproved { .. } => {}
    }
    None
}

fn set_outcome(row: &mut ViewRow, outcome: &Outcome, overridden: bool) {
    let (name, kind, principle, transitional, status) = match outcome {
        Outcome::Issue { kind, transitional } => (
            "issue",
            Some(kind.as_str()),
            None,
            *transitional,
            "accepted",
        ),
        Outcome::Refuse { principle, .. } => (
            "refuse",
            None,
            Some(principle.as_str()),
            false,
            "awaiting_refusal",
        ),
        Outcome::CannotIssue { principle, .. } => (
            "cannot_issue",
            None,
            Some(principle.as_str()),
            false,
            "awaiting_refusal",
        ),
        Outcome::UnitVerification { .. } => ("unit_verification", None, None, false, "referred"),
    };
    row.outcome = Some(name.into());
    row.kind = kind.map(String::from);
    row.principle = principle.map(String::from);
    row.transitional = transitional;
    row.status = status.into();
    row.overridden |= overridden;
}

/// Inserts or replaces `rows` with one statement.
async fn write_rows(tx: &mut Transaction<'_, Postgres>, rows: &[&ViewRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }

    // One array per column, in the column order of the statement.
    let column = |get: fn(&ViewRow) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|row| get(row)).collect()
    };
    let date = |get: fn(&ViewRow) -> Option<NaiveDate>| -> Vec<Option<NaiveDate>> {
        rows.iter().map(|row| get(row)).collect()
    };
    let flag =
        |get: fn(&ViewRow) -> bool| -> Vec<bool> { rows.iter().map(|row| get(row)).collect() };

    sqlx::query(
        "INSERT INTO application_view (application_id, station_code, matter, decision_date, policy_version, rule_id,
                outcome, kind, principle, transitional, in_transition, overridden, promised_date, status,
                explanation, referral, certificate_number, closed_on, last_position)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::bool[], $11::bool[], $12::bool[], $13::date[], $14::text[],
                $15::text[], $16::text[], $17::text[], $18::date[], $19::bigint[])
         ON CONFLICT (application_id) DO UPDATE SET
                policy_version = EXCLUDED.policy_version, rule_id = EXCLUDED.rule_id, outcome = EXCLUDED.outcome,
                kind = EXCLUDED.kind, principle = EXCLUDED.principle, transitional = EXCLUDED.transitional,
                in_transition = EXCLUDED.in_transition, overridden = EXCLUDED.overridden,
                promised_date = EXCLUDED.promised_date, status = EXCLUDED.status,
                explanation = EXCLUDED.explanation, referral = EXCLUDED.referral,
                certificate_number = EXCLUDED.certificate_number, closed_on = EXCLUDED.closed_on,
                last_position = EXCLUDED.last_position",
    )
    .bind(column(|row| Some(row.application_id.clone())))
    .bind(column(|row| Some(row.station_code.clone())))
    .bind(column(|row| Some(row.matter.clone())))
    .bind(date(|row| Some(row.decision_date)))
    .bind(column(|row| row.policy_version.clone()))
    .bind(column(|row| row.rule_id.clone()))
    .bind(column(|row| row.outcome.clone()))
    .bind(column(|row| row.kind.clone()))
    .bind(column(|row| row.principle.clone()))
    .bind(flag(|row| row.transitional))
    .bind(flag(|row| row.in_transition))
    .bind(flag(|row| row.overridden))
    .bind(date(|row| row.promised_date))
    .bind(column(|row| Some(row.status.clone())))
    .bind(column(|row| row.explanation.clone()))
    .bind(column(|row| row.referral.clone()))
    .bind(column(|row| row.certificate_number.clone()))
    .bind(date(|row| row.closed_on))
    .bind(rows.iter().map(|row| row.last_position).collect::<Vec<i64>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts new certificates with one statement; a number already stored is left as it is.
async fn write_certificates(
    tx: &mut Transaction<'_, Postgres>,
    certificates: &[CertificateRow],
) -> sqlx::Result<()> {
    if certificates.is_empty() {
        return Ok(());
    }
    let text = |get: fn(&CertificateRow) -> &str| -> Vec<String> {
        certificates
            .iter()
            .map(|row| get(row).to_string())
            .collect()
    };
    sqlx::query(
        "INSERT INTO certificate_view (certificate_number, application_id, kind, station_code, issued_on, status)
         SELECT number, application, kind, station, issued_on, 'valid'
           FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::date[])
                AS c(number, application, kind, station, issued_on)
         ON CONFLICT (certificate_number) DO NOTHING",
    )
    .bind(text(|row| &row.certificate_number))
    .bind(text(|row| &row.application_id))
    .bind(text(|row| &row.kind))
    .bind(text(|row| &row.station_code))
    .bind(
        certificates
            .iter()
            .map(|row| row.issued_on)
            .collect::<Vec<NaiveDate>>(),
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
