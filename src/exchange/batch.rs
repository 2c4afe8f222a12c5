//! Streamed intake of a subject batch: a CSV read line by line from the request body, each
//! row validated, valid rows inserted into `exchange_subjects` in chunks, so that memory stays
//! flat in the batch size.
//!
//! The first line is the header: `id_number` and one column per requested item other than
//! `id_number`, in any order. Fields may be quoted as in RFC 4180, but a quoted field cannot
//! span lines. Blank lines are skipped but still counted, so line numbers match the file.

use aggregates::exchange::register::normalize_value;
use aggregates::exchange::request::BatchSummary;
use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use utoipa::ToSchema;

/// Largest subject batch accepted, in bytes (about two million subjects).
pub const MAX_BATCH_BYTES: u64 = 128 * 1024 * 1024;

/// Bytes read from the temporary file at a time.
const SPOOL_BLOCK: usize = 64 * 1024;
/// Longest CSV line accepted, in bytes.
const MAX_LINE_BYTES: usize = 8 * 1024;
/// Valid rows inserted per statement.
const INSERT_CHUNK: usize = 5_000;
/// Invalid rows listed in a response; the count covers all of them.
pub const MAX_LISTED_ROWS: usize = 1_000;

/// Handling of a batch that has invalid rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidRows {
    /// Accept none of the batch.
    #[default]
    RejectBatch,
    /// Accept the valid rows and report the others.
    SkipRows,
}

/// An invalid row: its 1-based line in the file and why it is invalid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// The outcome of reading a batch.
#[derive(Debug)]
pub struct Intake {
    pub summary: BatchSummary,
    /// The first [`MAX_LISTED_ROWS`] invalid rows.
    pub invalid_rows: Vec<RowError>,
    /// Whether the valid rows were committed to `exchange_subjects`.
    pub recorded: bool,
}

/// A batch that could not be read at all. Nothing is recorded for it.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("subject CSV header is invalid: {0}")]
    Header(String),
    #[error("subject CSV line {0} is longer than {MAX_LINE_BYTES} bytes; split or shorten it")]
    LineTooLong(u64),
    #[error("subject CSV is larger than {MAX_BATCH_BYTES} bytes; split it into several requests")]
    TooLarge,
    #[error("reading the request body failed: {0}")]
    Body(String),
    #[error("keeping the received batch in a temporary file failed: {0}")]
    Spool(std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The CSV columns of a batch.
struct Columns {
    width: usize,
    id_column: usize,
    /// For each claimed item, in the request's item order, its column and register field.
    claims: Vec<(usize, String)>,
}

/// Reads the batch from `body` into `exchange_subjects` under `request_id`.
///
/// With [`OnInvalidRows::RejectBatch`] and any invalid row, the transaction rolls back and
/// `recorded` is false; otherwise the valid rows are committed.
///
/// # Errors
/// Fails on an invalid header, an over-long line or body, a body that cannot be read, or a
/// database error; nothing is committed then.
pub async fn ingest<S, E>(
    pool: &PgPool,
    request_id: &str,
    items: &[String],
    mode: OnInvalidRows,
    mut body: S,
) -> Result<Intake, IntakeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // The whole body is received into a temporary file before the transaction begins. A write
    // transaction held open while a client sends slowly would hold back the projections and
    // the sealer, which read only up to the oldest running transaction of the database.
    let file = tempfile::tempfile().map_err(IntakeError::Spool)?;
    let mut spool = tokio::fs::File::from_std(file);
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| IntakeError::Body(error.to_string()))?;
        received += chunk.len() as u64;
        if received > MAX_BATCH_BYTES {
            return Err(IntakeError::TooLarge);
        }
        spool.write_all(&chunk).await.map_err(IntakeError::Spool)?;
    }
    spool.rewind().await.map_err(IntakeError::Spool)?;

    let mut tx = pool.begin().await?;
    let mut reader = BatchReader::new(items);
    let mut buffer: Vec<u8> = Vec::new();
    let mut block = vec![0u8; SPOOL_BLOCK];
    loop {
        let read = spool.read(&mut block).await.map_err(IntakeError::Spool)?;
        if read == 0 {
            break;
        }
        let chunk = &block[..read];
        reader.file_hasher.update(chunk);
        reader.file_bytes += chunk.len() as u64;
        if reader.file_bytes > MAX_BATCH_BYTES {
            return Err(IntakeError::TooLarge);
        }
        buffer.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(offset) = buffer[start..].iter().position(|byte| *byte == b'\n') {
            reader.take_line(&buffer[start..start + offset])?;
            start += offset + 1;
        }
        buffer.drain(..start);
        if buffer.len() > MAX_LINE_BYTES {
            return Err(IntakeError::LineTooLong(reader.line + 1));
        }
        if reader.pending.len() >= INSERT_CHUNK {
            reader.flush(&mut tx, request_id, mode).await?;
        }
    }
    if !buffer.is_empty() {
        reader.take_line(&buffer)?;
    }
    if reader.columns.is_none() {
        return Err(IntakeError::Header(
            "the file is empty; the first line must name the columns".into(),
        ));
    }
    reader.flush(&mut tx, request_id, mode).await?;
    let recorded = mode == OnInvalidRows::SkipRows || reader.invalid_count == 0;
    if recorded {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    let summary = BatchSummary {
        file_sha256: hex::encode(reader.file_hasher.finalize()),
        file_bytes: reader.file_bytes,
        rows_sha256: hex::encode(reader.rows_hasher.finalize()),
        subjects: reader.valid_count,
        rejected_rows: reader.invalid_count,
    };
    Ok(Intake {
        summary,
        invalid_rows: reader.invalid_rows,
        recorded,
    })
}

/// Returns the line the rows digest covers for one accepted row: the compact JSON array
/// `[line, id_number, [claimed values…]]` followed by a newline.
pub fn row_digest_line(line: i64, id_number: &str, claimed: &[String]) -> String {
    let mut text = serde_json::json!([line, id_number, claimed]).to_string();
    text.push('\n');
    text
}

struct BatchReader<'a> {
    items: &'a [String],
    columns: Option<Columns>,
    line: u64,
    file_hasher: Sha256,
    file_bytes: u64,
    rows_hasher: Sha256,
    valid_count: u64,
    invalid_count: u64,
    invalid_rows: Vec<RowError>,
    /// Valid rows not yet inserted: line, ID number, claimed values as JSON.
    pending: Vec<(i64, String, String)>,
}

impl<'a> BatchReader<'a> {
    fn new(items: &'a [String]) -> Self {
        BatchReader {
            items,
            columns: None,
            line: 0,
            file_hasher: Sha256::new(),
            file_bytes: 0,
            rows_hasher: Sha256::new(),
            valid_count: 0,
            invalid_count: 0,
            invalid_rows: Vec::new(),
            pending: Vec::new(),
        }
    }

    fn take_line(&mut self, bytes: &[u8]) -> Result<(), IntakeError> {
        self.line += 1;
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) if self.columns.is_none() => {
                return Err(IntakeError::Header("line 1 is not valid UTF-8".into()));
            }
            Err(_) => {
                self.invalid("the line is not valid UTF-8; save the file as UTF-8");
                return Ok(());
            }
        };
        let Some(columns) = &self.columns else {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let columns = parse_header(text, self.items).map_err(IntakeError::Header)?;
            self.columns = Some(columns);
            return Ok(());
        };
        if text.trim().is_empty() {
            return Ok(());
        }
        match parse_row(text, columns) {
            Ok((id_number, claimed)) => {
                let line = self.line as i64;
                let digest_line = row_digest_line(line, &id_number, &claimed);
                self.rows_hasher.update(digest_line.as_bytes());
                self.valid_count += 1;
                let claimed = serde_json::to_string(&claimed).expect("strings serialize");
                self.pending.push((line, id_number, claimed));
            }
            Err(reason) => self.invalid(&reason),
        }
        Ok(())
    }

    fn invalid(&mut self, reason: &str) {
        self.invalid_count += 1;
        if self.invalid_rows.len() < MAX_LISTED_ROWS {
            self.invalid_rows.push(RowError {
                line: self.line,
                reason: reason.to_string(),
            });
        }
    }

    /// Inserts the pending rows, unless the batch is already lost to an invalid row.
    async fn flush(
        &mut self,
        tx: &mut Transaction<'_, Postgres>,
        request_id: &str,
        mode: OnInvalidRows,
    ) -> Result<(), sqlx::Error> {
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() || (mode == OnInvalidRows::RejectBatch && self.invalid_count > 0) {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(pending.len());
        let mut ids = Vec::with_capacity(pending.len());
        let mut claims = Vec::with_capacity(pending.len());
        for (line, id, claimed) in pending {
            lines.push(line);
            ids.push(id);
            claims.push(claimed);
        }
        sqlx::query(
            "INSERT INTO exchange_subjects (request_id, line, id_number, claimed)
             SELECT $1, line, id_number, claimed::jsonb
               FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS t(line, id_number, claimed)",
        )
        .bind(request_id)
        .bind(&lines)
        .bind(&ids)
        .bind(&claims)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// Reads the header: `id_number` and one column per requested item other than `id_number`.
fn parse_header(text: &str, items: &[String]) -> Result<Columns, String> {
    let names = split_csv_line(text)?;
    let names: Vec<&str> = names.iter().map(|name| name.trim()).collect();
    let expected: Vec<&str> = std::iter::once("id_number")
        .chain(
            items
                .iter()
                .map(String::as_str)
                .filter(|item| *item != "id_number"),
        )
        .collect();
    let position = |name: &str| names.iter().position(|found| *found == name);
    let complete =
        names.len() == expected.len() && expected.iter().all(|name| position(name).is_some());
    if !complete {
        return Err(format!(
            "line 1 has columns {:?} but must have exactly {:?} in any order, one per requested item",
            names.join(","),
            expected.join(",")
        ));
    }
    let claims = expected[1..]
        .iter()
        .map(|name| (position(name).expect("checked above"), name.to_string()))
        .collect();
    Ok(Columns {
        width: names.len(),
        id_column: position("id_number").expect("checked above"),
        claims,
    })
}

/// Validates one data row and returns its ID number and claimed values.
fn parse_row(text: &str, columns: &Columns) -> Result<(String, Vec<String>), String> {
    let fields = split_csv_line(text)?;
    if fields.len() != columns.width {
        return Err(format!(
            "the row has {} fields but the header has {}",
            fields.len(),
            columns.width
        ));
    }
    let id_number = normalize_value("id_number", &fields[columns.id_column])?;
    let mut claimed = Vec::with_capacity(columns.claims.len());
    for (column, field) in &columns.claims {
        claimed.push(normalize_value(field, &fields[*column])?);
    }
    Ok((id_number, claimed))
}

/// Splits one CSV line into fields. A field in double quotes may contain commas and doubled
/// quotes (`""`); a line break inside quotes is not supported.
///
/// # Errors
/// Fails on an unterminated quoted field or text after a closing quote.
pub fn split_csv_line(text: &str) -> Result<Vec<String>, String> {
    if !text.contains('"') {
        return Ok(text.split(',').map(String::from).collect());
    }
    let mut fields = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("a quoted field has no closing quote".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(other) => field.push(other),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("text follows a closing quote; quote the whole field".into());
            }
        } else {
            while let Some(next) = chars.peek() {
                if *next == ',' {
                    break;
                }
                field.push(*next);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_csv_line;

    #[test]
    fn plain_fields_split_on_commas() {
        assert_eq!(split_csv_line("a,b,,c").unwrap(), ["a", "b", "", "c"]);
    }

    #[test]
    fn quoted_field_keeps_comma_and_quote() {
        assert_eq!(
            split_csv_line(r#"1,"x, ""y""",z"#).unwrap(),
            ["1", r#"x, "y""#, "z"]
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert!(split_csv_line(r#"1,"x"#).is_err());
        assert!(split_csv_line(r#""x"y,1"#).is_err());
    }
}
