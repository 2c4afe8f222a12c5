//! Commands an officer sends to an application.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::policy::{Circumstances, RequestingUnit, Role};

/// The authenticated officer who sends a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub officer_id: String,
    pub role: Role,
    pub station: String,
}

/// A person as typed into a request, before validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonInput {
    pub name: String,
    pub id_number: String,
}

/// The signer of the certificate stub (存根).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Signer {
    Applicant,
    Agent,
}

/// The finding of an evidence check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EvidenceResult {
    /// The source shows the fact to be certified.
    Confirmed,
    /// The source has no record of it.
    NotFound,
    /// The source shows something else; the certificate cannot be issued from it.
    Contradicts,
}

/// An outcome an officer can set by overriding screening.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OverrideOutcome {
    Issue { kind: String },
    Refuse { principle: String, referral: String },
}

/// Submits an application; screening runs at once and is recorded with it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubmitApplication {
    pub actor: Actor,
    pub applicant: PersonInput,
    pub agent: Option<PersonInput>,
    pub unit: RequestingUnit,
    pub matter: String,
    pub circumstances: Circumstances,
    pub purpose: String,
    pub station: String,
    pub decision_date: NaiveDate,
}

/// Replaces the screening outcome, with a written justification.
#[derive(Clone, Debug, PartialEq)]
pub struct OverrideScreening {
    pub actor: Actor,
    pub outcome: OverrideOutcome,
    pub justification: String,
}

/// Closes a refused application with an explanation and a referral.
#[derive(Clone, Debug, PartialEq)]
pub struct RefuseApplication {
    pub actor: Actor,
    pub explanation: String,
    pub referral: String,
    pub date: NaiveDate,
}

/// Records one check of an evidence source.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordEvidence {
    pub actor: Actor,
    pub source: String,
    pub reference: String,
    pub result: EvidenceResult,
}

/// Records the signature on the certificate stub and the signer's contact phone.
#[derive(Clone, Debug, PartialEq)]
pub struct SignStub {
    pub actor: Actor,
    pub signer: Signer,
    pub name: String,
    pub phone: String,
}

/// A station leader's approval.
#[derive(Clone, Debug, PartialEq)]
pub struct ApproveApplication {
    pub actor: Actor,
    pub date: NaiveDate,
}

/// Issues the certificate under a number the server assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct IssueCertificate {
    pub actor: Actor,
    pub certificate_number: String,
    pub seal: String,
    pub date: NaiveDate,
}

/// Records the applicant's withdrawal.
#[derive(Clone, Debug, PartialEq)]
pub struct WithdrawApplication {
    pub actor: Actor,
    pub reason: String,
    pub date: NaiveDate,
}

/// Every command an application accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum ApplicationCommand {
    Submit(Box<SubmitApplication>),
    OverrideScreening(OverrideScreening),
    Refuse(RefuseApplication),
    RecordEvidence(RecordEvidence),
    SignStub(SignStub),
    Approve(ApproveApplication),
    Issue(IssueCertificate),
    Withdraw(WithdrawApplication),
}

impl ApplicationCommand {
    /// Returns the officer who sent the command.
    pub fn actor(&self) -> &Actor {
        match self {
            ApplicationCommand::Submit(command) => &command.actor,
            ApplicationCommand::OverrideScreening(command) => &command.actor,
            ApplicationCommand::Refuse(command) => &command.actor,
            ApplicationCommand::RecordEvidence(command) => &command.actor,
            ApplicationCommand::SignStub(command) => &command.actor,
            ApplicationCommand::Approve(command) => &command.actor,
            ApplicationCommand::Issue(command) => &command.actor,
            ApplicationCommand::Withdraw(command) => &command.actor,
        }
    }
}
