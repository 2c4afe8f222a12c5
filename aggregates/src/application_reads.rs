//! Reads of an application's personal data.
//!
//! An application's own views mask identity numbers. Its full history and its supervision
//! replay show every event as recorded, identity numbers included, so each such read is recorded
//! with its reader and purpose before anything is shown. The reads of one application form their
//! own hash chain (aggregate `application_reads`, keyed by the application's id) beside the
//! application's chain. Nothing may be appended to a damaged chain, and a read must still be
//! recorded when the application's chain is damaged, which is when it is read most.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::application::{Actor, ApplicationError, ApplicationServices, Result};
use crate::policy::Role;
use crate::record_check::access::require_purpose;

/// The view that showed the personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadView {
    /// `GET /v1/applications/{id}/history`.
    History,
    /// `GET /v1/supervision/applications/{id}/replay`.
    Replay,
}

/// The recorded reads of one application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationReads {
    pub reads: usize,
}

/// Records that `actor` reads the personal data of an application of `case_station`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadApplication {
    pub actor: Actor,
    pub case_station: String,
    pub view: ReadView,
    pub purpose: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ApplicationReadEvent {
    ApplicationRead {
        reader: String,
        role: Role,
        /// Station of the reader.
        station: String,
        /// Station that owns the application, as the server found it when the read was made.
        case_station: String,
        view: ReadView,
        purpose: String,
    },
}

impl DomainEvent for ApplicationReadEvent {
    fn event_type(&self) -> String {
        "ApplicationRead".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for ApplicationReads {
    const TYPE: &'static str = "application_reads";
    type Command = ReadApplication;
    type Event = ApplicationReadEvent;
    type Error = ApplicationError;
    type Services = ApplicationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        for event in decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.reads += 1;
    }
}

/// Checks that `actor` may read the personal data of an application of `case_station`: an
/// officer of that station, an inspector, or an officer of the provincial office.
///
/// # Errors
/// Returns `Forbidden` (code `personal_data_access_denied`) for anyone else.
pub fn check_personal_data_access(actor: &Actor, case_station: &str) -> Result<()> {
    let allowed = matches!(actor.role, Role::Inspector | Role::ProvincialOfficer)
        || actor.station == case_station;
    if allowed {
        return Ok(());
    }
    let message = format!(
        "the personal data of applications of station {case_station} is readable only by officers of that station, inspectors and the provincial office"
    );
    Err(ApplicationError::forbidden(
        "personal_data_access_denied",
        "officer",
        message,
    ))
}

/// Decides the event a read produces.
///
/// # Errors
/// Rejects a reader outside [`check_personal_data_access`], and a missing or overlong purpose.
pub fn decide(command: ReadApplication) -> Result<Vec<ApplicationReadEvent>> {
    check_personal_data_access(&command.actor, &command.case_station)?;
    let purpose = require_purpose(&command.purpose)?;
    Ok(vec![ApplicationReadEvent::ApplicationRead {
        reader: command.actor.officer_id,
        role: command.actor.role,
        station: command.actor.station,
        case_station: command.case_station,
        view: command.view,
        purpose,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_check::access::MAX_PURPOSE_CHARS;

    fn read(role: Role, station: &str, purpose: &str) -> ReadApplication {
        ReadApplication {
            actor: Actor {
                officer_id: "r1".into(),
                role,
                station: station.into(),
            },
            case_station: "S1".into(),
            view: ReadView::History,
            purpose: purpose.into(),
        }
    }

    fn code(result: Result<Vec<ApplicationReadEvent>>) -> &'static str {
        result.expect_err("rejected").code()
    }

    #[test]
    fn read_records_reader_case_station_and_trimmed_purpose() {
        let events =
            decide(read(Role::HouseholdOfficer, "S1", "  applicant asked  ")).expect("recorded");
        assert_eq!(
            events,
            vec![ApplicationReadEvent::ApplicationRead {
                reader: "r1".into(),
                role: Role::HouseholdOfficer,
                station: "S1".into(),
                case_station: "S1".into(),
                view: ReadView::History,
                purpose: "applicant asked".into(),
            }]
        );
        let mut reads = ApplicationReads::default();
        for event in events {
            reads.apply(event);
        }
        assert_eq!(reads.reads, 1);
    }

    #[test]
    fn read_access_by_station_and_role() {
        for role in [Role::Inspector, Role::ProvincialOfficer] {
            assert!(decide(read(role, "S9", "inspection of S1")).is_ok());
        }
        for role in [Role::HouseholdOfficer, Role::StationLeader] {
            let result = decide(read(role, "S2", "curious"));
            assert_eq!(code(result), "personal_data_access_denied");
        }
    }

    #[test]
    fn read_needs_a_purpose_of_bounded_length() {
        assert_eq!(
            code(decide(read(Role::HouseholdOfficer, "S1", " "))),
            "missing_field"
        );
        let long = "x".repeat(MAX_PURPOSE_CHARS + 1);
        assert_eq!(
            code(decide(read(Role::HouseholdOfficer, "S1", &long))),
            "field_too_long"
        );
        let longest = "x".repeat(MAX_PURPOSE_CHARS);
        assert!(decide(read(Role::HouseholdOfficer, "S1", &longest)).is_ok());
        for invisible in ["\u{200B}", "\u{FEFF}", "\u{3000}", "--"] {
            let result = decide(read(Role::HouseholdOfficer, "S1", invisible));
            assert_eq!(code(result), "missing_field", "{invisible:?}");
        }
        for hidden in [
            "case 7\u{1}",
            "case \u{202E}7",
            "case 7\u{200F}",
            "\u{1b}[31mcase 7",
        ] {
            let result = decide(read(Role::HouseholdOfficer, "S1", hidden));
            assert_eq!(code(result), "invalid_text", "{hidden:?}");
        }
        assert!(decide(read(Role::HouseholdOfficer, "S1", "申请人查询")).is_ok());
    }
}
