//! Information exchange between departments (信息交换): departments verify citizen information
//! with the household-administration department instead of demanding certificates.
//!
//! * [`department`]: a department that sends exchange requests.
//! * [`agreement`]: an exchange agreement between a city or county household-administration
//!   department and another department, with its cadence and items.
//! * [`unit`]: the one responsible officer (责任民警) a city or county designates for exchange.
//! * [`request`]: one exchange request, from receipt with its subject batch through
//!   verification, feedback, handover and filing.
//! * [`policy`]: the information items and cadence deadlines of the policy document.
//! * [`register`]: the value formats of population-register fields.

use std::sync::Arc;

use crate::policy::PolicyBook;

pub mod agreement;
pub mod department;
mod error;
pub mod policy;
pub mod register;
pub mod request;
pub mod unit;

pub use error::{ExchangeError, Result};

/// Services of the exchange aggregates: the policy versions.
#[derive(Clone, Debug)]
pub struct ExchangeServices {
    pub policies: Arc<PolicyBook>,
}

/// Rejects `text` when it is blank or longer than `max_chars`, naming `field`.
pub(crate) fn require_text(field: &str, text: &str, max_chars: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(ExchangeError::invalid(
            "missing_field",
            field,
            format!("{field} is missing; send a non-empty value"),
        ));
    }
    if text.chars().count() > max_chars {
        return Err(ExchangeError::invalid(
            "field_too_long",
            field,
            format!("{field} is longer than {max_chars} characters; shorten it"),
        ));
    }
    Ok(())
}
