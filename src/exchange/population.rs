//! The population register: the product's stand-in for the provincial population system,
//! loaded from CSV. Verification reads it only through `exchange_results`' comparison, so
//! replacing it with the provincial system means replacing that one statement.
//!
//! The CSV has the header
//! `id_number,name,former_name,sex,ethnicity,date_of_birth,place_of_birth,native_place,registered_address,household_moves,registration_status,criminal_record`
//! in this order, UTF-8, with the value formats of `aggregates::exchange::register`. A row for
//! an ID number already in the register replaces it.

use std::io::BufRead;

use aggregates::exchange::policy::REGISTER_FIELDS;
use aggregates::exchange::register::normalize_value;
use sqlx::PgPool;

use super::batch::{MAX_LISTED_ROWS, RowError, split_csv_line};

/// Rows upserted per statement.
const INSERT_CHUNK: usize = 5_000;

/// Reason a register file was not loaded. Nothing is loaded when any row is invalid.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    #[error("population CSV has {count} invalid rows; the first: {}", describe(.rows))]
    InvalidRows { count: u64, rows: Vec<RowError> },
    #[error("reading the population CSV failed: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn describe(rows: &[RowError]) -> String {
    let listed: Vec<String> = rows
        .iter()
        .take(10)
        .map(|row| format!("line {}: {}", row.line, row.reason))
        .collect();
    listed.join("; ")
}

/// Validates every row of a register CSV and, if all are valid, upserts them in one
/// transaction. Returns the number of rows loaded.
///
/// # Errors
/// Fails with [`PopulationError::InvalidRows`] listing each invalid row by line (up to
/// [`MAX_LISTED_ROWS`]), or on a read or database error.
pub async fn load_csv(pool: &PgPool, reader: impl BufRead) -> Result<u64, PopulationError> {
    let mut tx = pool.begin().await?;
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); REGISTER_FIELDS.len()];
    let mut invalid = Vec::new();
    let mut invalid_count = 0u64;
    let mut loaded = 0u64;
    // A repeated ID number would make one upsert statement change a row twice.
    let mut seen = std::collections::HashSet::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index as u64 + 1;
        let line = line?;
        let line = line.strip_prefix('\u{feff}').unwrap_or(&line);
        let parsed = if number == 1 {
            check_header(line).map(|()| None)
        } else if line.trim().is_empty() {
            Ok(None)
        } else {
            parse_row(line).and_then(|values| {
                if seen.insert(values[0].clone()) {
                    Ok(Some(values))
                } else {
                    Err("the ID number is listed on an earlier line".to_string())
                }
            })
        };
        match parsed {
            Ok(Some(values)) => {
                for (column, value) in columns.iter_mut().zip(values) {
                    column.push(value);
                }
                loaded += 1;
            }
            Ok(None) => {}
            Err(reason) => {
                invalid_count += 1;
                if invalid.len() < MAX_LISTED_ROWS {
                    invalid.push(RowError {
                        line: number,
                        reason,
                    });
                }
            }
        }
        if columns[0].len() >= INSERT_CHUNK && invalid_count == 0 {
            upsert(&mut tx, &mut columns).await?;
        }
    }
    if loaded == 0 && invalid_count == 0 {
        invalid_count = 1;
        invalid.push(RowError {
            line: 1,
            reason: "the file has no header or no rows".into(),
        });
    }
    if invalid_count > 0 {
        return Err(PopulationError::InvalidRows {
            count: invalid_count,
            rows: invalid,
        });
    }
    upsert(&mut tx, &mut columns).await?;
    tx.commit().await?;
    Ok(loaded)
}

fn check_header(line: &str) -> Result<(), String> {
    let names = split_csv_line(line)?;
    if names.iter().map(|name| name.trim()).eq(REGISTER_FIELDS) {
        return Ok(());
    }
    Err(format!("the header must be {}", REGISTER_FIELDS.join(",")))
}

fn parse_row(line: &str) -> Result<Vec<String>, String> {
    let fields = split_csv_line(line)?;
    if fields.len() != REGISTER_FIELDS.len() {
        return Err(format!(
            "the row has {} fields but must have {}",
            fields.len(),
            REGISTER_FIELDS.len()
        ));
    }
    REGISTER_FIELDS
        .iter()
        .zip(&fields)
        .map(|(field, value)| normalize_value(field, value))
        .collect()
}

async fn upsert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    columns: &mut [Vec<String>],
) -> Result<(), sqlx::Error> {
    if columns[0].is_empty() {
        return Ok(());
    }
    let names = REGISTER_FIELDS.join(", ");
    let arrays: Vec<String> = (1..=REGISTER_FIELDS.len())
        .map(|index| format!("${index}::text[]"))
        .collect();
    let updates: Vec<String> = REGISTER_FIELDS[1..]
        .iter()
        .map(|field| format!("{field} = EXCLUDED.{field}"))
        .collect();
    let statement = format!(
        "INSERT INTO population_register ({names}) SELECT * FROM UNNEST({})
         ON CONFLICT (id_number) DO UPDATE SET {}",
        arrays.join(", "),
        updates.join(", ")
    );
    let mut query = sqlx::query(&statement);
    for column in columns.iter_mut() {
        query = query.bind(std::mem::take(column));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
