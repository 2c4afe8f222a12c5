//! Training records: the notice must be conveyed to every officer, who must know the standards,
//! scope and procedure of each policy version. One aggregate per officer, keyed by the
//! officer's id, records which policy version's training the officer completed, and when.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::application::{Actor, ApplicationError, ApplicationServices, Result};
use crate::policy::Role;

/// One completed training.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedTraining {
    pub policy_version: String,
    pub course: String,
    pub completed_on: NaiveDate,
    pub recorded_by: String,
}

/// The trainings of one officer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub officer: String,
    pub station: String,
    pub trainings: Vec<CompletedTraining>,
}

/// Records that `officer`, of `station`, completed the training of `policy_version`. The
/// server resolves the officer's station from the registry.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordTraining {
    pub actor: Actor,
    pub officer: String,
    pub station: String,
    pub policy_version: String,
    pub course: String,
    pub completed_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TrainingEvent {
    TrainingCompleted {
        officer: String,
        station: String,
        policy_version: String,
        course: String,
        completed_on: NaiveDate,
        recorded_by: String,
    },
}

impl DomainEvent for TrainingEvent {
    fn event_type(&self) -> String {
        "TrainingCompleted".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for TrainingRecord {
    const TYPE: &'static str = "training_record";
    type Command = RecordTraining;
    type Event = TrainingEvent;
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
        let TrainingEvent::TrainingCompleted {
            officer,
            station,
            policy_version,
            course,
            completed_on,
            recorded_by,
        } = event;
        self.officer = officer;
        self.station = station;
        self.trainings.push(CompletedTraining {
            policy_version,
            course,
            completed_on,
            recorded_by,
        });
    }
}

impl TrainingRecord {
    /// Decides the event a training record produces.
    ///
    /// # Errors
    /// Rejects anyone but a leader of the officer's station, an unknown policy version, a
    /// missing course, and a second record of the same version.
    pub fn decide(
        &self,
        command: RecordTraining,
        services: &ApplicationServices,
    ) -> Result<Vec<TrainingEvent>> {
        let actor = &command.actor;
        if actor.role != Role::StationLeader || actor.station != command.station {
            let message = format!(
                "training of an officer of station {} is recorded by a leader of that station",
                command.station
            );
            return Err(ApplicationError::forbidden(
                "station_leader_only",
                "officer",
                message,
            ));
        }
        let version = command.policy_version.trim();
        if services.policies.version(version).is_none() {
            let message = format!(
                "policy version {version:?} is not loaded on this server; use a version from GET /v1/policy"
            );
            return Err(ApplicationError::invalid(
                "unknown_policy_version",
                "policy_version",
                message,
            ));
        }
        let course = command.course.trim();
        if course.is_empty() {
            return Err(ApplicationError::invalid(
                "missing_field",
                "course",
                "course is required: the name of the training the officer completed",
            ));
        }
        if let Some(done) = self.trainings.iter().find(|t| t.policy_version == version) {
            let message = format!(
                "officer {} completed the training of policy version {version} on {}",
                command.officer, done.completed_on
            );
            return Err(ApplicationError::conflict(
                "training_already_recorded",
                message,
            ));
        }
        Ok(vec![TrainingEvent::TrainingCompleted {
            officer: command.officer,
            station: command.station,
            policy_version: version.to_string(),
            course: course.to_string(),
            completed_on: command.completed_on,
            recorded_by: command.actor.officer_id,
        }])
    }
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

    fn command(role: Role, station: &str, version: &str) -> RecordTraining {
        RecordTraining {
            actor: Actor {
                officer_id: "ld1".into(),
                role,
                station: station.into(),
            },
            officer: "hh1".into(),
            station: "S1".into(),
            policy_version: version.into(),
            course: "certificate catalogue and refusal principles".into(),
            completed_on: NaiveDate::from_ymd_opt(2026, 11, 3).expect("date"),
        }
    }

    fn code(result: Result<Vec<TrainingEvent>>) -> &'static str {
        result.expect_err("rejected").code()
    }

    #[test]
    fn training_recorded_once_per_version() {
        let services = services();
        let version = services.policies.current().version.clone();
        let mut record = TrainingRecord::default();
        let events = record
            .decide(command(Role::StationLeader, "S1", &version), &services)
            .expect("recorded");
        assert_eq!(events.len(), 1);
        for event in events {
            record.apply(event);
        }
        assert_eq!(record.trainings[0].policy_version, version);
        assert_eq!(record.trainings[0].recorded_by, "ld1");
        let again = record.decide(command(Role::StationLeader, "S1", &version), &services);
        assert_eq!(code(again), "training_already_recorded");
    }

    #[test]
    fn training_needs_own_leader_and_known_version() {
        let services = services();
        let version = services.policies.current().version.clone();
        let record = TrainingRecord::default();
        for (role, station) in [
            (Role::StationLeader, "S2"),
            (Role::HouseholdOfficer, "S1"),
            (Role::Inspector, "S1"),
        ] {
            let result = record.decide(command(role, station, &version), &services);
            assert_eq!(code(result), "station_leader_only");
        }
        let result = record.decide(command(Role::StationLeader, "S1", "1999-01"), &services);
        assert_eq!(code(result), "unknown_policy_version");
        let mut blank = command(Role::StationLeader, "S1", &version);
        blank.course = " ".into();
        assert_eq!(code(record.decide(blank, &services)), "missing_field");
    }
}
