//! Events of a no-criminal-record application: the facts its hash chain records.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::commands::{CheckResult, ObjectionDecision};
use crate::application::Person;
use crate::policy::Role;

/// Every event of a no-criminal-record application. Payloads carry integers, strings and
/// booleans only, so that their canonical encoding is exact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RecordCheckEvent {
    /// The application form (无违法犯罪记录核查证明出具申请表) was received and screened.
    RecordCheckSubmitted {
        applicant: Person,
        agent: Option<Person>,
        purpose: String,
        /// The destination country or the body that requires the certificate.
        destination: String,
        station: String,
        handling_officer: String,
        decision_date: NaiveDate,
        policy_version: String,
        promised_date: NaiveDate,
    },
    /// One record system or archive was checked.
    SourceChecked {
        source: String,
        query_reference: String,
        result: CheckResult,
        /// Whether the policy of this application reads the result as a record.
        counts_as_record: bool,
        officer: String,
        checked_at: DateTime<Utc>,
    },
    LeaderApproved {
        leader: String,
        approved_on: NaiveDate,
    },
    CertificateIssued {
        certificate_number: String,
        seal: String,
        officer: String,
        station: String,
        issued_on: NaiveDate,
    },
    /// A record was found and the applicant received a refusal notice.
    RecordCheckRefused {
        explanation: String,
        officer: String,
        refused_on: NaiveDate,
    },
    ObjectionFiled {
        reason: String,
        officer: String,
        filed_on: NaiveDate,
        due_on: NaiveDate,
    },
    ObjectionExtended {
        reason: String,
        officer: String,
        extended_on: NaiveDate,
        due_on: NaiveDate,
    },
    /// A record source was checked again for the objection.
    SourceRechecked {
        source: String,
        query_reference: String,
        result: CheckResult,
        counts_as_record: bool,
        officer: String,
        checked_at: DateTime<Utc>,
    },
    ObjectionAnswered {
        decision: ObjectionDecision,
        explanation: String,
        leader: String,
        answered_on: NaiveDate,
        /// True when the answer came after the due date.
        late: bool,
    },
    /// Someone read the check results; every read of criminal-record results is recorded.
    ResultsRead {
        reader: String,
        role: Role,
        station: String,
        purpose: String,
    },
}

impl DomainEvent for RecordCheckEvent {
    fn event_type(&self) -> String {
        let name = match self {
            RecordCheckEvent::RecordCheckSubmitted { .. } => "RecordCheckSubmitted",
            RecordCheckEvent::SourceChecked { .. } => "SourceChecked",
            RecordCheckEvent::LeaderApproved { .. } => "LeaderApproved",
            RecordCheckEvent::CertificateIssued { .. } => "CertificateIssued",
            RecordCheckEvent::RecordCheckRefused { .. } => "RecordCheckRefused",
            RecordCheckEvent::ObjectionFiled { .. } => "ObjectionFiled",
            RecordCheckEvent::ObjectionExtended { .. } => "ObjectionExtended",
            RecordCheckEvent::SourceRechecked { .. } => "SourceRechecked",
            RecordCheckEvent::ObjectionAnswered { .. } => "ObjectionAnswered",
            RecordCheckEvent::ResultsRead { .. } => "ResultsRead",
        };
        name.to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
