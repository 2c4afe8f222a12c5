//! Counts over the application view: issued per kind, refused per principle, explanations.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgPool;

/// Counts of a station's, or all stations', work.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub applications: i64,
    pub issued_per_kind: BTreeMap<String, i64>,
    pub transitional_issued: i64,
    pub refused_per_principle: BTreeMap<String, i64>,
    /// Refusals that carry both an explanation and a referral.
    pub refusals_explained: i64,
    pub refusals: i64,
    pub overridden: i64,
    pub withdrawn: i64,
    pub referred: i64,
    /// Accepted and awaiting a decision.
    pub open: i64,
}

/// Status, kind, principle, transitional, overridden, and whether a refusal is explained.
type ViewRow = (String, Option<String>, Option<String>, bool, bool, bool);

/// Computes the summary from `application_view`.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn summary(pool: &PgPool) -> sqlx::Result<Summary> {
    let mut summary = Summary::default();
    let rows: Vec<ViewRow> = sqlx::query_as(
        "SELECT status, kind, principle, transitional, overridden,
                coalesce(explanation, '') <> '' AND coalesce(referral, '') <> ''
           FROM application_view",
    )
    .fetch_all(pool)
    .await?;
    for (status, kind, principle, transitional, overridden, explained) in rows {
        summary.applications += 1;
        summary.overridden += i64::from(overridden);
        match status.as_str() {
            "issued" => {
                *summary
                    .issued_per_kind
                    .entry(kind.unwrap_or_default())
                    .or_default() += 1;
                summary.transitional_issued += i64::from(transitional);
            }
            "refused" => {
                *summary
                    .refused_per_principle
                    .entry(principle.unwrap_or_default())
                    .or_default() += 1;
                summary.refusals += 1;
                summary.refusals_explained += i64::from(explained);
            }
            "withdrawn" => summary.withdrawn += 1,
            "referred" => summary.referred += 1,
            _ => summary.open += 1,
        }
    }
    Ok(summary)
}
