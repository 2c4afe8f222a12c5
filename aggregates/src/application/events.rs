//! Events of an application: the facts its hash chain records.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::commands::{EvidenceResult, Signer};
use crate::id_number::IdNumber;
use crate::policy::{Circumstances, Outcome, RequestingUnit, ScreeningDecision};

/// A validated person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub id_number: IdNumber,
}

/// Every event of an application. Payloads carry integers and strings only, never floating
/// point numbers, so that their canonical encoding is exact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ApplicationEvent {
    ApplicationSubmitted {
        applicant: Person,
        agent: Option<Person>,
        unit: RequestingUnit,
        matter: String,
        circumstances: Circumstances,
        purpose: String,
        station: String,
        decision_date: NaiveDate,
        handling_officer: String,
    },
    ApplicationScreened {
        decision: ScreeningDecision,
    },
    ScreeningOverridden {
        previous: Outcome,
        outcome: Outcome,
        justification: String,
        officer: String,
        /// The date the certificate is promised for when the override issues one: the decision
        /// date plus the kind's time limit in working days. Absent for an override that refuses,
        /// and in events recorded before overrides set a date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        promised_date: Option<NaiveDate>,
    },
    ApplicationRefused {
        principle: String,
        referral: String,
        explanation: String,
        /// True where the transition window turned the refusal into an explained "cannot issue".
        cannot_issue: bool,
        officer: String,
        refused_on: NaiveDate,
    },
    EvidenceChecked {
        source: String,
        reference: String,
        result: EvidenceResult,
        officer: String,
    },
    StubSigned {
        signer: Signer,
        name: String,
        phone: String,
    },
    LeaderApproved {
        leader: String,
        approved_on: NaiveDate,
    },
    CertificateIssued {
        certificate_number: String,
        kind: String,
        seal: String,
        officer: String,
        station: String,
        issued_on: NaiveDate,
        transitional: bool,
    },
    ApplicationWithdrawn {
        reason: String,
        officer: String,
        withdrawn_on: NaiveDate,
    },
}

impl DomainEvent for ApplicationEvent {
    fn event_type(&self) -> String {
        let name = match self {
            ApplicationEvent::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            ApplicationEvent::ApplicationScreened { .. } => "ApplicationScreened",
            ApplicationEvent::ScreeningOverridden { .. } => "ScreeningOverridden",
            ApplicationEvent::ApplicationRefused { .. } => "ApplicationRefused",
            ApplicationEvent::EvidenceChecked { .. } => "EvidenceChecked",
            ApplicationEvent::StubSigned { .. } => "StubSigned",
            ApplicationEvent::LeaderApproved { .. } => "LeaderApproved",
            ApplicationEvent::CertificateIssued { .. } => "CertificateIssued",
            ApplicationEvent::ApplicationWithdrawn { .. } => "ApplicationWithdrawn",
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
