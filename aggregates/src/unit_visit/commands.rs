//! Commands an officer sends to a unit verification visit.

use chrono::{DateTime, NaiveDate, Utc};

use crate::application::{Actor, PersonInput};
use crate::record_check::{CheckResult, ReadResults};

/// The visiting unit as typed into the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitInput {
    pub name: String,
    /// Unit type code from `criminal_records.unit_verification.unit_types`.
    pub unit_type: String,
    /// Administrative level, such as `provincial` or `county`.
    pub level: String,
}

/// The introduction letter (介绍信) the staff member presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LetterInput {
    pub number: String,
    pub date: NaiveDate,
    pub issuing_unit: String,
    /// SHA-256 of the letter's scan, as 64 hexadecimal digits.
    pub scan_sha256: String,
}

/// Registers a visit; the policy decides at once whether the unit qualifies.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisterVisit {
    pub actor: Actor,
    pub unit: UnitInput,
    pub staff: PersonInput,
    pub letter: LetterInput,
    pub purpose: String,
    /// The person whose record the unit requests.
    pub subject: PersonInput,
    pub decision_date: NaiveDate,
}

/// Records the record systems checked, the result and what was disclosed to the unit.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordVisitFindings {
    pub actor: Actor,
    pub sources: Vec<String>,
    pub query_reference: String,
    pub result: CheckResult,
    pub disclosed: String,
    pub checked_at: DateTime<Utc>,
}

/// A station leader's approval of a written verification certificate, with the unit's need.
#[derive(Clone, Debug, PartialEq)]
pub struct ApproveVisitCertificate {
    pub actor: Actor,
    pub need: String,
    pub date: NaiveDate,
}

/// Issues the verification certificate under a number the server assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueVisitCertificate {
    pub actor: Actor,
    pub certificate_number: String,
    pub seal: String,
    pub date: NaiveDate,
}

/// Every command a unit verification visit accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum UnitVisitCommand {
    Register(Box<RegisterVisit>),
    RecordFindings(RecordVisitFindings),
    ApproveCertificate(ApproveVisitCertificate),
    IssueCertificate(IssueVisitCertificate),
    ReadResults(ReadResults),
}

impl UnitVisitCommand {
    /// Returns the officer who sent the command.
    pub fn actor(&self) -> &Actor {
        match self {
            UnitVisitCommand::Register(command) => &command.actor,
            UnitVisitCommand::RecordFindings(command) => &command.actor,
            UnitVisitCommand::ApproveCertificate(command) => &command.actor,
            UnitVisitCommand::IssueCertificate(command) => &command.actor,
            UnitVisitCommand::ReadResults(command) => &command.actor,
        }
    }
}
