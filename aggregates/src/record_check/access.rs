//! Who may read the results of a criminal-record check.
//!
//! Results are internal to the police: only the officer handling the case, a leader of the
//! station that owns it, and inspectors may read them, and every read is recorded with its
//! purpose.

use crate::application::{Actor, ApplicationError};
use crate::policy::Role;

/// Checks that `actor` may read the results of a case of `station` handled by `handler`.
///
/// # Errors
/// Returns `Forbidden` (code `results_access_denied`) for anyone else.
pub fn check_results_access(
    actor: &Actor,
    station: &str,
    handler: &str,
) -> Result<(), ApplicationError> {
    let allowed = match actor.role {
        Role::Inspector => true,
        Role::StationLeader => actor.station == station,
        _ => actor.station == station && actor.officer_id == handler,
    };
    if allowed {
        return Ok(());
    }
    let message = format!(
        "criminal-record results of station {station} are readable only by the handling officer, a leader of that station and inspectors"
    );
    Err(ApplicationError::forbidden(
        "results_access_denied",
        "officer",
        message,
    ))
}

/// Maximum length of a read's purpose, in characters.
pub const MAX_PURPOSE_CHARS: usize = 500;

/// Returns whether `purpose` states anything: at least one letter or digit, in any script.
/// Whitespace, punctuation and invisible characters such as the zero-width space state nothing.
pub fn states_purpose(purpose: &str) -> bool {
    purpose.chars().any(char::is_alphanumeric)
}

/// Returns the trimmed purpose of a read of criminal-record results or personal data.
///
/// # Errors
/// Returns `missing_field` when no purpose is stated (see [`states_purpose`]), `invalid_text`
/// for a control or text-direction character, and `field_too_long` above
/// [`MAX_PURPOSE_CHARS`].
pub fn require_purpose(purpose: &str) -> Result<String, ApplicationError> {
    let purpose = purpose.trim();
    if !states_purpose(purpose) {
        return Err(ApplicationError::invalid(
            "missing_field",
            "purpose",
            "purpose is required: state in words why the data is read, such as the case or inspection it serves",
        ));
    }
    // Direction marks and overrides can make the stored text read differently from what is
    // shown.
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if purpose.chars().any(hidden) {
        return Err(ApplicationError::invalid(
            "invalid_text",
            "purpose",
            "purpose contains a control or text-direction character; send plain text",
        ));
    }
    if purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(ApplicationError::invalid(
            "field_too_long",
            "purpose",
            format!("purpose is longer than {MAX_PURPOSE_CHARS} characters; shorten it"),
        ));
    }
    Ok(purpose.to_string())
}
