//! Problem reports: a station reports a situation the rules do not settle, the provincial office
//! acknowledges it and answers, naming the policy version that settles it where there is one.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::application::{Actor, ApplicationError, ApplicationServices, Result};
use crate::inspection::require_written;
use crate::policy::Role;

/// The stage of a problem report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemStatus {
    #[default]
    NotReported,
    Reported,
    Acknowledged,
    Answered,
}

/// The state of one problem report, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProblemReport {
    pub status: ProblemStatus,
    pub station: String,
    pub reporter: String,
    /// Matter code of the policy the situation comes closest to, if any.
    pub matter: Option<String>,
    pub situation: String,
    pub reported_on: Option<NaiveDate>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_on: Option<NaiveDate>,
    pub answer: Option<String>,
    pub policy_version: Option<String>,
    pub answered_by: Option<String>,
    pub answered_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProblemCommand {
    Report {
        actor: Actor,
        matter: Option<String>,
        situation: String,
        date: NaiveDate,
    },
    Acknowledge {
        actor: Actor,
        date: NaiveDate,
    },
    /// Answers the report; `policy_version` names a loaded version that settles it.
    Answer {
        actor: Actor,
        answer: String,
        policy_version: Option<String>,
        date: NaiveDate,
    },
}

impl ProblemCommand {
    pub fn actor(&self) -> &Actor {
        match self {
            ProblemCommand::Report { actor, .. }
            | ProblemCommand::Acknowledge { actor, .. }
            | ProblemCommand::Answer { actor, .. } => actor,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProblemEvent {
    ProblemReported {
        station: String,
        reporter: String,
        matter: Option<String>,
        situation: String,
        reported_on: NaiveDate,
    },
    ProblemAcknowledged {
        officer: String,
        acknowledged_on: NaiveDate,
    },
    ProblemAnswered {
        officer: String,
        answer: String,
        policy_version: Option<String>,
        answered_on: NaiveDate,
    },
}

impl DomainEvent for ProblemEvent {
    fn event_type(&self) -> String {
        match self {
            ProblemEvent::ProblemReported { .. } => "ProblemReported",
            ProblemEvent::ProblemAcknowledged { .. } => "ProblemAcknowledged",
            ProblemEvent::ProblemAnswered { .. } => "ProblemAnswered",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for ProblemReport {
    const TYPE: &'static str = "problem_report";
    type Command = ProblemCommand;
    type Event = ProblemEvent;
    type Error = ApplicationError;
    type Services = ApplicationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProblemEvent::ProblemReported {
                station,
                reporter,
                matter,
                situation,
                reported_on,
            } => {
                self.status = ProblemStatus::Reported;
                self.station = station;
                self.reporter = reporter;
                self.matter = matter;
                self.situation = situation;
                self.reported_on = Some(reported_on);
            }
            ProblemEvent::ProblemAcknowledged {
                officer,
                acknowledged_on,
            } => {
                self.status = ProblemStatus::Acknowledged;
                self.acknowledged_by = Some(officer);
                self.acknowledged_on = Some(acknowledged_on);
            }
            ProblemEvent::ProblemAnswered {
                officer,
                answer,
                policy_version,
                answered_on,
            } => {
                self.status = ProblemStatus::Answered;
                self.answer = Some(answer);
                self.policy_version = policy_version;
                self.answered_by = Some(officer);
                self.answered_on = Some(answered_on);
            }
        }
    }
}

impl ProblemReport {
    /// Decides the events a command produces.
    ///
    /// # Errors
    /// Returns the first rule the command breaks; nothing is recorded for it.
    pub fn decide(
        &self,
        command: ProblemCommand,
        services: &ApplicationServices,
    ) -> Result<Vec<ProblemEvent>> {
        let provincial = command.actor().role == Role::ProvincialOfficer;
        match command {
            ProblemCommand::Report {
                actor,
                matter,
                situation,
                date,
            } => {
                if self.status != ProblemStatus::NotReported {
                    return Err(ApplicationError::conflict(
                        "already_reported",
                        "this problem is already reported",
                    ));
                }
                if actor.role.supervises() {
                    return Err(ApplicationError::forbidden(
                        "station_officers_only",
                        "role",
                        "problems are reported by officers of a station; the provincial office and inspectors answer and read them",
                    ));
                }
                let matter = matter
                    .map(|code| code.trim().to_string())
                    .filter(|code| !code.is_empty());
                if let Some(code) = &matter
                    && !services.policies.current().matters.contains_key(code)
                {
                    let message = format!(
                        "matter {code:?} is not in the current policy; leave it out for a situation no matter covers, or use a code from GET /v1/policy"
                    );
                    return Err(ApplicationError::invalid(
                        "unknown_matter",
                        "matter",
                        message,
                    ));
                }
                require_written(&situation, "situation")?;
                Ok(vec![ProblemEvent::ProblemReported {
                    station: actor.station,
                    reporter: actor.officer_id,
                    matter,
                    situation: situation.trim().to_string(),
                    reported_on: date,
                }])
            }
            ProblemCommand::Acknowledge { actor, date } => {
                let reported_on = self.reported_on.ok_or(ApplicationError::NotFound)?;
                check_provincial(provincial)?;
                match self.status {
                    ProblemStatus::Answered => {
                        return Err(ApplicationError::conflict(
                            "already_answered",
                            "this problem is already answered",
                        ));
                    }
                    ProblemStatus::Acknowledged => {
                        return Err(ApplicationError::conflict(
                            "already_acknowledged",
                            "this problem is already acknowledged",
                        ));
                    }
                    ProblemStatus::NotReported | ProblemStatus::Reported => {}
                }
                check_order(date, reported_on)?;
                Ok(vec![ProblemEvent::ProblemAcknowledged {
                    officer: actor.officer_id,
                    acknowledged_on: date,
                }])
            }
            ProblemCommand::Answer {
                actor,
                answer,
                policy_version,
                date,
            } => {
                let reported_on = self.reported_on.ok_or(ApplicationError::NotFound)?;
                check_provincial(provincial)?;
                if self.status == ProblemStatus::Answered {
                    return Err(ApplicationError::conflict(
                        "already_answered",
                        "this problem is already answered",
                    ));
                }
                check_order(date, self.acknowledged_on.unwrap_or(reported_on))?;
                require_written(&answer, "answer")?;
                let policy_version = policy_version
                    .map(|version| version.trim().to_string())
                    .filter(|version| !version.is_empty());
                if let Some(version) = &policy_version
                    && services.policies.version(version).is_none()
                {
                    let message = format!(
                        "policy version {version:?} is not loaded on this server; name a loaded version or leave it out"
                    );
                    return Err(ApplicationError::invalid(
                        "unknown_policy_version",
                        "policy_version",
                        message,
                    ));
                }
                // Answering acknowledges a report that was not acknowledged before.
                let mut events = Vec::new();
                if self.status == ProblemStatus::Reported {
                    events.push(ProblemEvent::ProblemAcknowledged {
                        officer: actor.officer_id.clone(),
                        acknowledged_on: date,
                    });
                }
                events.push(ProblemEvent::ProblemAnswered {
                    officer: actor.officer_id,
                    answer: answer.trim().to_string(),
                    policy_version,
                    answered_on: date,
                });
                Ok(events)
            }
        }
    }
}

fn check_provincial(provincial: bool) -> Result<()> {
    if provincial {
        return Ok(());
    }
    Err(ApplicationError::forbidden(
        "provincial_office_only",
        "role",
        "problem reports are acknowledged and answered by officers of the provincial office (role provincial_officer)",
    ))
}

fn check_order(date: NaiveDate, earliest: NaiveDate) -> Result<()> {
    if date < earliest {
        let message = format!(
            "date {date} is before the previous step ({earliest}); use a date on or after it"
        );
        return Err(ApplicationError::invalid(
            "date_out_of_order",
            "date",
            message,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::{Policy, PolicyBook, bundled};

    fn services() -> ApplicationServices {
        let policy = Policy::load(bundled::DOCUMENT, bundled::CALENDAR_CSV).expect("policy loads");
        ApplicationServices {
            policies: Arc::new(PolicyBook::new(policy)),
        }
    }

    fn actor(id: &str, role: Role) -> Actor {
        Actor {
            officer_id: id.into(),
            role,
            station: "S1".into(),
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
    }

    fn report(role: Role, matter: Option<&str>) -> ProblemCommand {
        ProblemCommand::Report {
            actor: actor("hh1", role),
            matter: matter.map(String::from),
            situation: "a consulate asks for proof of a name used before 1990".into(),
            date: day(2),
        }
    }

    fn answer(role: Role, date: NaiveDate) -> ProblemCommand {
        ProblemCommand::Answer {
            actor: actor("pv1", role),
            answer: "issue the name-change certificate from the archive".into(),
            policy_version: None,
            date,
        }
    }

    fn code(result: Result<Vec<ProblemEvent>>) -> &'static str {
        result.expect_err("rejected").code()
    }

    fn replay(events: Vec<ProblemEvent>) -> ProblemReport {
        let mut report = ProblemReport::default();
        for event in events {
            report.apply(event);
        }
        report
    }

    #[test]
    fn problem_reported_then_answered() {
        let services = services();
        let reported = ProblemReport::default()
            .decide(report(Role::HouseholdOfficer, None), &services)
            .expect("reported");
        let state = replay(reported.clone());
        assert_eq!(state.status, ProblemStatus::Reported);
        assert_eq!(state.station, "S1");
        // An answer without an acknowledgement acknowledges too.
        let answered = state
            .decide(answer(Role::ProvincialOfficer, day(5)), &services)
            .expect("answered");
        assert!(matches!(
            answered[..],
            [
                ProblemEvent::ProblemAcknowledged { .. },
                ProblemEvent::ProblemAnswered { .. }
            ]
        ));
        let state = replay(reported.into_iter().chain(answered).collect());
        assert_eq!(state.status, ProblemStatus::Answered);
        assert_eq!(state.acknowledged_on, Some(day(5)));
        let again = state.decide(answer(Role::ProvincialOfficer, day(6)), &services);
        assert_eq!(code(again), "already_answered");
    }

    #[test]
    fn bad_reports_and_answers_rejected() {
        let services = services();
        let empty = ProblemReport::default();
        assert_eq!(
            code(empty.decide(report(Role::Inspector, None), &services)),
            "station_officers_only"
        );
        assert_eq!(
            code(empty.decide(
                report(Role::HouseholdOfficer, Some("no_such_matter")),
                &services
            )),
            "unknown_matter"
        );
        assert_eq!(
            empty.decide(answer(Role::ProvincialOfficer, day(5)), &services),
            Err(ApplicationError::NotFound)
        );
        let state = replay(
            empty
                .decide(report(Role::HouseholdOfficer, None), &services)
                .expect("reported"),
        );
        assert_eq!(
            code(state.decide(answer(Role::Inspector, day(5)), &services)),
            "provincial_office_only"
        );
        assert_eq!(
            code(state.decide(answer(Role::ProvincialOfficer, day(1)), &services)),
            "date_out_of_order"
        );
        let unknown_version = ProblemCommand::Answer {
            actor: actor("pv1", Role::ProvincialOfficer),
            answer: "issue the name-change certificate from the archive".into(),
            policy_version: Some("1999-01".into()),
            date: day(5),
        };
        assert_eq!(
            code(state.decide(unknown_version, &services)),
            "unknown_policy_version"
        );
    }
}
