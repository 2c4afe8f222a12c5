//! Commands an officer sends to a no-criminal-record application.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::application::{Actor, PersonInput};

/// The result a record system showed for the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    NoRecord,
    /// A criminal record (犯罪记录).
    CriminalRecord,
    /// Administrative violations only (违法记录); the policy decides whether they count.
    AdministrativeViolation,
    /// A sealed juvenile record (未成年人犯罪记录封存); the policy decides whether it counts.
    SealedJuvenileRecord,
}

/// The answer to an objection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObjectionDecision {
    /// The refusal stands.
    Upheld,
    /// The refusal was wrong; the applicant applies anew and that application is handled first.
    Reversed,
}

/// Submits the application form; screening runs at once.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmitRecordCheck {
    pub actor: Actor,
    pub applicant: PersonInput,
    pub agent: Option<PersonInput>,
    pub purpose: String,
    pub destination: String,
    pub decision_date: NaiveDate,
}

/// Records one check of a record source, during the investigation or for an objection.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSource {
    pub actor: Actor,
    pub source: String,
    pub query_reference: String,
    pub result: CheckResult,
    pub checked_at: DateTime<Utc>,
}

/// An officer's act that carries only a date: approval.
#[derive(Clone, Debug, PartialEq)]
pub struct ApproveRecordCheck {
    pub actor: Actor,
    pub date: NaiveDate,
}

/// Issues the certificate under a number the server assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueRecordCertificate {
    pub actor: Actor,
    pub certificate_number: String,
    pub seal: String,
    pub date: NaiveDate,
}

/// An act with a written text and a date: refusal, objection, extension.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenAct {
    pub actor: Actor,
    pub text: String,
    pub date: NaiveDate,
}

/// Answers an objection.
#[derive(Clone, Debug, PartialEq)]
pub struct AnswerObjection {
    pub actor: Actor,
    pub decision: ObjectionDecision,
    pub explanation: String,
    pub date: NaiveDate,
}

/// Reads the results of the checks for a stated purpose.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadResults {
    pub actor: Actor,
    pub purpose: String,
}

/// Every command a no-criminal-record application accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordCheckCommand {
    Submit(Box<SubmitRecordCheck>),
    CheckSource(CheckSource),
    Approve(ApproveRecordCheck),
    Issue(IssueRecordCertificate),
    Refuse(WrittenAct),
    FileObjection(WrittenAct),
    ExtendObjection(WrittenAct),
    Recheck(CheckSource),
    AnswerObjection(AnswerObjection),
    ReadResults(ReadResults),
}

impl RecordCheckCommand {
    /// Returns the officer who sent the command.
    pub fn actor(&self) -> &Actor {
        match self {
            RecordCheckCommand::Submit(command) => &command.actor,
            RecordCheckCommand::CheckSource(command) | RecordCheckCommand::Recheck(command) => {
                &command.actor
            }
            RecordCheckCommand::Approve(command) => &command.actor,
            RecordCheckCommand::Issue(command) => &command.actor,
            RecordCheckCommand::Refuse(command)
            | RecordCheckCommand::FileObjection(command)
            | RecordCheckCommand::ExtendObjection(command) => &command.actor,
            RecordCheckCommand::AnswerObjection(command) => &command.actor,
            RecordCheckCommand::ReadResults(command) => &command.actor,
        }
    }
}
