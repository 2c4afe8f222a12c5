//! Verification of a subject batch against the population register, and the result file.
//!
//! The comparison runs in one `INSERT … SELECT` inside the database, so the batch never passes
//! through the server's memory. The result file is CSV: the header
//! `line,subject_id_number,<item>,…` and one row per subject with `match`, `mismatch` or `not_found`
//! per requested item, in the request's item order. It carries no register data, only the
//! outcome for what the request asked.

use aggregates::exchange::policy::REGISTER_FIELDS;
use aggregates::exchange::request::VerificationSummary;
use anyhow::Context;
use axum::body::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

use super::batch::row_digest_line;

/// Rows read per query when the subjects or results are read back in line order.
const PAGE_ROWS: i64 = 10_000;

/// Checks the subject rows against `rows_sha256`, compares them with the register, stores the
/// outcomes in `exchange_results` and returns the digest and counts of the result file.
///
/// # Errors
/// Fails when the subject rows no longer match their recorded digest, when an item is not a
/// register field, or on a database error.
pub async fn verify(
    pool: &PgPool,
    request_id: &str,
    items: &[String],
    rows_sha256: &str,
) -> anyhow::Result<VerificationSummary> {
    let found = subject_rows_sha256(pool, request_id).await?;
    anyhow::ensure!(
        found == rows_sha256,
        "subject rows of exchange request {request_id} hash to {found}, not to the recorded {rows_sha256}; the table was changed"
    );
    let statement = comparison_sql(items)?;
    let mut tx = pool.begin().await?;
    // Results of an earlier run whose event was never recorded are replaced.
    sqlx::query("DELETE FROM exchange_results WHERE request_id = $1")
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(&statement)
        .bind(request_id)
        .execute(&mut *tx)
        .await
        .context("comparing the batch with the population register failed")?;
    tx.commit().await?;

    let mut hasher = Sha256::new();
    let mut result_bytes = 0u64;
    let mut file = result_file(pool.clone(), request_id.to_string(), items.to_vec());
    while let Some(chunk) = file.try_next().await? {
        hasher.update(&chunk);
        result_bytes += chunk.len() as u64;
    }
    let counts = sqlx::query(
        "SELECT count(DISTINCT line) AS subjects,
                count(*) FILTER (WHERE outcome = 'match') AS matches,
                count(*) FILTER (WHERE outcome = 'mismatch') AS mismatches,
                count(*) FILTER (WHERE outcome = 'not_found') AS not_found
           FROM exchange_results, unnest(outcomes) AS outcome
          WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_one(pool)
    .await?;
    let count = |name: &str| counts.try_get::<i64, _>(name).map(|value| value as u64);
    Ok(VerificationSummary {
        result_sha256: hex::encode(hasher.finalize()),
        result_bytes,
        subjects: count("subjects")?,
        matches: count("matches")?,
        mismatches: count("mismatches")?,
        not_found: count("not_found")?,
    })
}

/// Builds the comparison statement. Item codes become column names, so each one is checked
/// against the fixed list of register fields before it is written into the SQL.
fn comparison_sql(items: &[String]) -> anyhow::Result<String> {
    let mut outcomes = Vec::with_capacity(items.len());
    let mut claim = 0;
    for item in items {
        let field = REGISTER_FIELDS
            .iter()
            .find(|field| **field == item.as_str())
            .with_context(|| format!("item {item} is not a population-register field"))?;
        // The ID number identifies the subject, so it matches whenever the register has it.
        let outcome = if *field == "id_number" {
            "CASE WHEN p.id_number IS NULL THEN 'not_found' ELSE 'match' END".to_string()
        } else {
            let outcome = format!(
                "CASE WHEN p.id_number IS NULL THEN 'not_found' \
                 WHEN p.{field} = s.claimed->>{claim} THEN 'match' ELSE 'mismatch' END"
            );
            claim += 1;
            outcome
        };
        outcomes.push(outcome);
    }
    Ok(format!(
        "INSERT INTO exchange_results (request_id, line, id_number, outcomes)
         SELECT s.request_id, s.line, s.id_number, ARRAY[{}]
           FROM exchange_subjects s
           LEFT JOIN population_register p ON p.id_number = s.id_number
          WHERE s.request_id = $1",
        outcomes.join(", ")
    ))
}

/// Recomputes the rows digest of a request's subject rows, reading them in pages.
///
/// # Errors
/// Fails on a database error or a `claimed` value that is not an array of strings.
pub async fn subject_rows_sha256(pool: &PgPool, request_id: &str) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT line, id_number, claimed FROM exchange_subjects
              WHERE request_id = $1 AND line > $2 ORDER BY line LIMIT $3",
        )
        .bind(request_id)
        .bind(after)
        .bind(PAGE_ROWS)
        .fetch_all(pool)
        .await?;
        for row in &rows {
            let line: i64 = row.try_get("line")?;
            let id_number: String = row.try_get("id_number")?;
            let claimed: serde_json::Value = row.try_get("claimed")?;
            let claimed: Vec<String> = serde_json::from_value(claimed)
                .with_context(|| format!("claimed values of line {line} are not strings"))?;
            hasher.update(row_digest_line(line, &id_number, &claimed).as_bytes());
            after = line;
        }
        if (rows.len() as i64) < PAGE_ROWS {
            return Ok(hex::encode(hasher.finalize()));
        }
    }
}

/// Streams the result file of a request in pages of [`PAGE_ROWS`] rows, so that it is never
/// held whole in memory.
pub fn result_file(
    pool: PgPool,
    request_id: String,
    items: Vec<String>,
) -> impl Stream<Item = Result<Bytes, sqlx::Error>> + Send + Unpin + 'static {
    let header = Bytes::from(format!("line,subject_id_number,{}\n", items.join(",")));
    let pages = stream::try_unfold(Some(0i64), move |after| {
        let pool = pool.clone();
        let request_id = request_id.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let rows = sqlx::query(
                "SELECT line, id_number, outcomes FROM exchange_results
                  WHERE request_id = $1 AND line > $2 ORDER BY line LIMIT $3",
            )
            .bind(&request_id)
            .bind(after)
            .bind(PAGE_ROWS)
            .fetch_all(&pool)
            .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let mut text = String::with_capacity(rows.len() * 48);
            let mut last = after;
            for row in &rows {
                let line: i64 = row.try_get("line")?;
                let id_number: String = row.try_get("id_number")?;
                let outcomes: Vec<String> = row.try_get("outcomes")?;
                text.push_str(&format!("{line},{id_number},{}\n", outcomes.join(",")));
                last = line;
            }
            let next = ((rows.len() as i64) == PAGE_ROWS).then_some(last);
            Ok(Some((Bytes::from(text), next)))
        }
    });
    Box::pin(stream::once(async move { Ok(header) }).chain(pages))
}
