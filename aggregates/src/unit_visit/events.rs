//! Events of a unit verification visit: the facts its hash chain records.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::application::Person;
use crate::policy::Role;
use crate::record_check::CheckResult;

/// The visiting unit after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub name: String,
    pub unit_type: String,
    pub level: String,
}

/// The introduction letter after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntroductionLetter {
    pub number: String,
    pub date: NaiveDate,
    pub issuing_unit: String,
    /// Lower-case hexadecimal SHA-256 of the scan.
    pub scan_sha256: String,
}

/// Every event of a unit verification visit. Payloads carry integers, strings, booleans and
/// arrays of strings only, so that their canonical encoding is exact.
// Events are built one command at a time and applied once, so the size of the registration
// variant costs nothing that boxing would save.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UnitVisitEvent {
    /// A unit's staff member presented the letter, and the policy screened the visit.
    VisitRegistered {
        unit: Unit,
        staff: Person,
        letter: IntroductionLetter,
        purpose: String,
        subject: Person,
        station: String,
        handling_officer: String,
        decision_date: NaiveDate,
        policy_version: String,
        /// Id of the qualifying rule that matched, or the id recorded for an unqualified unit.
        rule_id: String,
    },
    /// No qualifying rule matched, so no record is checked or disclosed to the unit.
    VisitRefused {
        principle: String,
        explanation: String,
        referral: String,
        officer: String,
        refused_on: NaiveDate,
    },
    /// The officer checked the record systems and disclosed the outcome to the unit.
    VisitChecked {
        sources: Vec<String>,
        query_reference: String,
        result: CheckResult,
        /// Whether the policy of this visit reads the result as a record.
        counts_as_record: bool,
        /// The information the officer disclosed to the unit, orally or in writing.
        disclosed: String,
        officer: String,
        checked_at: DateTime<Utc>,
    },
    /// A station leader approved a written certificate because the unit needs one.
    VisitCertificateApproved {
        leader: String,
        need: String,
        approved_on: NaiveDate,
    },
    VisitCertificateIssued {
        certificate_number: String,
        seal: String,
        officer: String,
        station: String,
        issued_on: NaiveDate,
    },
    /// Someone read the findings; every read of criminal-record results is recorded.
    VisitResultsRead {
        reader: String,
        role: Role,
        station: String,
        purpose: String,
    },
}

impl DomainEvent for UnitVisitEvent {
    fn event_type(&self) -> String {
        let name = match self {
            UnitVisitEvent::VisitRegistered { .. } => "VisitRegistered",
            UnitVisitEvent::VisitRefused { .. } => "VisitRefused",
            UnitVisitEvent::VisitChecked { .. } => "VisitChecked",
            UnitVisitEvent::VisitCertificateApproved { .. } => "VisitCertificateApproved",
            UnitVisitEvent::VisitCertificateIssued { .. } => "VisitCertificateIssued",
            UnitVisitEvent::VisitResultsRead { .. } => "VisitResultsRead",
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
