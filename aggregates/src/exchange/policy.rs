//! The exchange part of the policy document: information items and cadence deadlines.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::ExchangeError;
use crate::calendar::WorkingDayCalendar;
use crate::policy::PolicyError;

/// Population-register fields an information item may name. Verification compares a claimed
/// value with the register field of the same name, so an item outside this list could never be
/// verified. The order is that of the register's CSV file, with `id_number`, the key, first.
pub const REGISTER_FIELDS: [&str; 12] = [
    "id_number",
    "name",
    "former_name",
    "sex",
    "ethnicity",
    "date_of_birth",
    "place_of_birth",
    "native_place",
    "registered_address",
    "household_moves",
    "registration_status",
    "criminal_record",
];

/// How often the two departments of an agreement exchange information.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Annual,
    SemiAnnual,
    Quarterly,
    Monthly,
    AdHoc,
}

impl Cadence {
    pub const ALL: [Cadence; 5] = [
        Cadence::Annual,
        Cadence::SemiAnnual,
        Cadence::Quarterly,
        Cadence::Monthly,
        Cadence::AdHoc,
    ];

    /// Returns the snake_case code used in the API and the policy.
    pub fn code(self) -> &'static str {
        match self {
            Cadence::Annual => "annual",
            Cadence::SemiAnnual => "semi_annual",
            Cadence::Quarterly => "quarterly",
            Cadence::Monthly => "monthly",
            Cadence::AdHoc => "ad_hoc",
        }
    }
}

/// One kind of citizen information departments verify by exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeItem {
    /// A field of [`REGISTER_FIELDS`].
    pub code: String,
    pub name: String,
    /// Kinds of department that may verify this item; empty means every kind. Criminal
    /// records, for example, are verified only for courts and procuratorates.
    #[serde(default)]
    pub department_kinds: Vec<String>,
}

/// A kind of department that exchanges information, such as a court or a civil-affairs bureau.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentKind {
    pub code: String,
    pub name: String,
}

/// The feedback deadline of one cadence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CadenceRule {
    pub code: Cadence,
    pub name: String,
    /// Working days after the day of receipt (day 0); 0 means the same working day.
    pub deadline_working_days: u32,
}

/// The `[exchange]` table of the policy document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangePolicy {
    pub department_kinds: Vec<DepartmentKind>,
    pub items: Vec<ExchangeItem>,
    pub cadences: Vec<CadenceRule>,
}

impl ExchangePolicy {
    /// Checks that item codes are register fields listed once, and that each cadence has
    /// exactly one deadline.
    ///
    /// # Errors
    /// Fails with [`PolicyError::Invalid`] naming the offending entry.
    pub fn check(&self) -> Result<(), PolicyError> {
        let invalid = |field: String, message: &str| PolicyError::Invalid {
            field,
            message: message.to_string(),
        };
        if self.items.is_empty() {
            return Err(invalid(
                "exchange.items".into(),
                "must list at least one item",
            ));
        }
        let mut codes = BTreeSet::new();
        for item in &self.items {
            let field = format!("exchange.items.{}", item.code);
            if !REGISTER_FIELDS.contains(&item.code.as_str()) {
                let message = format!(
                    "is not a register field; use one of {}",
                    REGISTER_FIELDS.join(", ")
                );
                return Err(invalid(field, &message));
            }
            if !codes.insert(item.code.as_str()) {
                return Err(invalid(field, "is listed twice"));
            }
            if let Some(kind) = item
                .department_kinds
                .iter()
                .find(|kind| !self.has_department_kind(kind))
            {
                let message = format!(
                    "names department kind {kind:?}, which exchange.department_kinds does not list"
                );
                return Err(invalid(format!("{field}.department_kinds"), &message));
            }
        }
        let cadences: BTreeSet<Cadence> = self.cadences.iter().map(|rule| rule.code).collect();
        if cadences.len() != self.cadences.len() || cadences.len() != Cadence::ALL.len() {
            return Err(invalid(
                "exchange.cadences".into(),
                "must define each of annual, semi_annual, quarterly, monthly and ad_hoc once",
            ));
        }
        Ok(())
    }

    /// Tells whether `code` is an information item of this policy.
    pub fn has_item(&self, code: &str) -> bool {
        self.items.iter().any(|item| item.code == code)
    }

    /// Tells whether `code` is a department kind of this policy.
    pub fn has_department_kind(&self, code: &str) -> bool {
        self.department_kinds.iter().any(|kind| kind.code == code)
    }

    /// Tells whether a department of kind `department_kind` may verify item `code`.
    pub fn item_allowed_for(&self, code: &str, department_kind: &str) -> bool {
        self.items.iter().any(|item| {
            item.code == code
                && (item.department_kinds.is_empty()
                    || item
                        .department_kinds
                        .iter()
                        .any(|kind| kind == department_kind))
        })
    }

    /// Returns the deadline in working days of `cadence`.
    pub fn deadline_working_days(&self, cadence: Cadence) -> u32 {
        self.cadences
            .iter()
            .find(|rule| rule.code == cadence)
            .map_or(0, |rule| rule.deadline_working_days)
    }

    /// Computes the feedback deadline of a request of `cadence` received on `received_on`.
    ///
    /// # Errors
    /// Fails with a rule violation on `received_at` when the calendar does not cover the
    /// receipt date or any day up to the deadline.
    pub fn deadline(
        &self,
        calendar: &WorkingDayCalendar,
        cadence: Cadence,
        received_on: NaiveDate,
    ) -> Result<NaiveDate, ExchangeError> {
        let days = self.deadline_working_days(cadence);
        calendar
            .add_working_days(received_on, days)
            .map_err(|error| {
                ExchangeError::rejected(
                    "calendar_year_not_covered",
                    "received_at",
                    error.to_string(),
                )
            })
    }
}
