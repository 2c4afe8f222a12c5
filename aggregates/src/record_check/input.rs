//! Checks of typed input shared by the criminal-record aggregates. Each failure names the
//! request field to correct.

use chrono::{DateTime, NaiveDate, Utc};

use crate::application::{ApplicationError, Person, PersonInput};
use crate::id_number::IdNumber;

/// Minimum length, in characters, of a written explanation to a citizen or a unit.
pub const MIN_EXPLANATION_CHARS: usize = 10;

pub(crate) fn require_text(value: &str, field: &str) -> Result<(), ApplicationError> {
    if value.trim().is_empty() {
        return Err(ApplicationError::invalid(
            "missing_field",
            field,
            format!("{field} is required"),
        ));
    }
    Ok(())
}

pub(crate) fn require_explanation(text: &str, field: &str) -> Result<(), ApplicationError> {
    if text.trim().chars().count() < MIN_EXPLANATION_CHARS {
        let message =
            format!("{field} must give the reason in at least {MIN_EXPLANATION_CHARS} characters");
        return Err(ApplicationError::rejected(
            "explanation_required",
            field,
            message,
        ));
    }
    Ok(())
}

pub(crate) fn validate_person(
    input: &PersonInput,
    field: &str,
) -> Result<Person, ApplicationError> {
    require_text(&input.name, &format!("{field}.name"))?;
    let id_number = IdNumber::parse(input.id_number.trim()).map_err(|error| {
        ApplicationError::invalid(
            "invalid_id_number",
            &format!("{field}.id_number"),
            error.to_string(),
        )
    })?;
    Ok(Person {
        name: input.name.trim().to_string(),
        id_number,
    })
}

/// Returns the calendar date of `time` in China Standard Time (UTC+8), the time zone that
/// decision dates are given in.
pub(crate) fn china_date(time: DateTime<Utc>) -> NaiveDate {
    (time + chrono::Duration::hours(8)).date_naive()
}
