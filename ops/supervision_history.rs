//! The rebuild part of `zhengming-supervision-bench`: complete application histories decided by
//! the real aggregate (`Application::handle`, which applies each event it emits), linked into
//! their hash chains and written straight into the events table, then the projections rebuilt
//! from them.

use std::collections::BTreeMap;
use std::time::Instant;

use aggregates::application::{
    Actor, Application, ApplicationCommand, ApplicationEvent, ApplicationServices,
    ApproveApplication, EvidenceResult, IssueCertificate, OverrideOutcome, OverrideScreening,
    PersonInput, RecordEvidence, RefuseApplication, SignStub, Signer, SubmitApplication,
    WithdrawApplication,
};
use aggregates::application_reads::{ApplicationReadEvent, ReadView};
use aggregates::chain::{self, GENESIS_HASH, StoredEvent};
use aggregates::policy::{Circumstances, RequestingUnit, Role};
use anyhow::Context;
use chrono::{Datelike, Days, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::json;
use sqlx::PgPool;

use crate::event_rows::insert_events;

/// Applications whose events are interleaved in the log, as concurrent stations append them.
const INTERLEAVED: usize = 64;
/// Rows per insert statement.
const INSERT_BATCH: usize = 5000;
/// First decision date; decisions spread over the following 320 days, inside the calendar of
/// the bundled policy, which ends with 2026.
const FIRST_DECISION: NaiveDate = NaiveDate::from_ymd_opt(2026, 1, 5).expect("valid date");

/// The course an application takes, chosen by its index.
#[derive(Clone, Copy, Debug)]
enum Course {
    /// Kinship certificate: evidence, stub signature, issuance by the promised date.
    Kinship,
    /// Kinship certificate after one source found nothing and another confirmed.
    KinshipSecondSource,
    /// Kinship certificate issued three days after the promised date: an `overdue` finding.
    KinshipLate,
    /// Abnormal-death certificate: evidence, signature, leader approval, issuance.
    Death,
    /// Household-cancellation certificate: evidence and issuance, no stub.
    Cancellation,
    /// Refused under `legal_document`: the applicants share a household register.
    SameRegister,
    /// Refused under `outside_police_duty` (alive status).
    AliveStatus,
    /// Refused: no police record of the cancellation.
    CancellationUnrecorded,
    /// Accepted, overridden to a refusal and refused: a `refused_issuable` finding.
    OverriddenToRefusal,
    /// A natural death screened as refused, overridden to issuance and issued.
    OverriddenToIssue,
    /// Accepted and withdrawn by the applicant.
    Withdrawn,
    /// Accepted and still open after the promised date: an `overdue` finding of the sweep.
    Open,
}

/// One application in twenty of each course but the most common.
const COURSES: [Course; 20] = [
    Course::Kinship,
    Course::Kinship,
    Course::Kinship,
    Course::Kinship,
    Course::Kinship,
    Course::Kinship,
    Course::Kinship,
    Course::KinshipSecondSource,
    Course::KinshipLate,
    Course::Death,
    Course::Death,
    Course::Cancellation,
    Course::SameRegister,
    Course::SameRegister,
    Course::AliveStatus,
    Course::CancellationUnrecorded,
    Course::OverriddenToRefusal,
    Course::OverriddenToIssue,
    Course::Withdrawn,
    Course::Open,
];

/// The officers of one station, with the roles the catalogue gives them.
struct Officers {
    household: Actor,
    community: Actor,
    leader: Actor,
}

impl Officers {
    fn of(station: &str) -> Officers {
        let actor = |suffix: &str, role| Actor {
            officer_id: format!("{station}-{suffix}"),
            role,
            station: station.to_string(),
        };
        Officers {
            household: actor("hh", Role::HouseholdOfficer),
            community: actor("cm", Role::CommunityOfficer),
            leader: actor("ld", Role::StationLeader),
        }
    }
}

/// An application being decided: the aggregate and the events it emitted, each with the
/// officer whose command emitted it.
struct Case<'a> {
    services: &'a ApplicationServices,
    application: Application,
    events: Vec<(ApplicationEvent, Actor)>,
    decided: NaiveDate,
}

impl Case<'_> {
    /// Handles `command` as the command side does; `handle` applies every event it emits.
    async fn run(&mut self, command: ApplicationCommand) -> anyhow::Result<()> {
        let actor = command.actor().clone();
        let sink = EventSink::default();
        self.application
            .handle(command, self.services, &sink)
            .await
            .map_err(|error| anyhow::anyhow!("the aggregate rejected a command: {error}"))?;
        for event in sink.collect().await {
            self.events.push((event, actor.clone()));
        }
        Ok(())
    }

    fn promised(&self) -> anyhow::Result<NaiveDate> {
        self.application
            .screening
            .as_ref()
            .and_then(|decision| decision.promised_date)
            .context("screening set no promised date for an accepted application")
    }

    /// Returns the day after the decision, or the promised date if that is earlier.
    fn on_time(&self) -> anyhow::Result<NaiveDate> {
        Ok(self.promised()?.min(self.decided + Days::new(1)))
    }

    async fn evidence(
        &mut self,
        actor: &Actor,
        source: &str,
        result: EvidenceResult,
    ) -> anyhow::Result<()> {
        let reference = format!("R-{}-{}", self.decided, self.events.len());
        self.run(ApplicationCommand::RecordEvidence(RecordEvidence {
            actor: actor.clone(),
            source: source.into(),
            reference,
            result,
        }))
        .await
    }

    async fn sign(&mut self, actor: &Actor) -> anyhow::Result<()> {
        self.run(ApplicationCommand::SignStub(SignStub {
            actor: actor.clone(),
            signer: Signer::Applicant,
            name: APPLICANT.into(),
            phone: "13904310000".into(),
        }))
        .await
    }

    async fn approve(&mut self, leader: &Actor, date: NaiveDate) -> anyhow::Result<()> {
        self.run(ApplicationCommand::Approve(ApproveApplication {
            actor: leader.clone(),
            date,
        }))
        .await
    }

    async fn issue(
        &mut self,
        actor: &Actor,
        seal: &str,
        date: NaiveDate,
        serial: u64,
    ) -> anyhow::Result<()> {
        // The server's number format: station, year, serial and a six-character check code.
        let certificate_number = format!("{}-{}-{serial:08}-K7M2QX", actor.station, date.year());
        self.run(ApplicationCommand::Issue(IssueCertificate {
            actor: actor.clone(),
            certificate_number,
            seal: seal.into(),
            date,
        }))
        .await
    }

    async fn refuse(&mut self, actor: &Actor, date: NaiveDate) -> anyhow::Result<()> {
        self.run(ApplicationCommand::Refuse(RefuseApplication {
            actor: actor.clone(),
            explanation: "法定证件可以证明该事项，派出所依规定不出具证明".into(),
            referral: "请向用证单位出示户口簿或相关部门证明".into(),
            date,
        }))
        .await
    }
}

const APPLICANT: &str = "张伟";

fn unit() -> RequestingUnit {
    RequestingUnit {
        name: "Bank of China, Changchun branch".into(),
        unit_type: "bank".into(),
        level: "city".into(),
        provincial_rule_requires: true,
    }
}

/// Decides application `index` at `station` through its whole course and returns its events.
async fn decide(
    index: u64,
    station: &str,
    services: &ApplicationServices,
) -> anyhow::Result<Vec<(ApplicationEvent, Actor)>> {
    let course = COURSES[index as usize % COURSES.len()];
    let officers = Officers::of(station);
    let decided = FIRST_DECISION + Days::new(index * 37 % 320);
    let (matter, circumstance, value, handler) = match course {
        Course::Kinship
        | Course::KinshipSecondSource
        | Course::KinshipLate
        | Course::OverriddenToRefusal
        | Course::Withdrawn
        | Course::Open => (
            "kinship",
            "same_household_register",
            false,
            &officers.household,
        ),
        Course::SameRegister => (
            "kinship",
            "same_household_register",
            true,
            &officers.household,
        ),
        Course::Death => ("death", "police_handled_event", true, &officers.community),
        Course::OverriddenToIssue => ("death", "police_handled_event", false, &officers.community),
        Course::Cancellation => (
            "household_cancellation",
            "police_records_show_it",
            true,
            &officers.household,
        ),
        Course::CancellationUnrecorded => (
            "household_cancellation",
            "police_records_show_it",
            false,
            &officers.household,
        ),
        Course::AliveStatus => ("alive_status", "", false, &officers.household),
    };
    let mut circumstances = Circumstances::new();
    if !circumstance.is_empty() {
        circumstances.insert(circumstance.into(), value);
    }
    let mut case = Case {
        services,
        application: Application::default(),
        events: Vec::new(),
        decided,
    };
    case.run(ApplicationCommand::Submit(Box::new(SubmitApplication {
        actor: handler.clone(),
        applicant: PersonInput {
            name: APPLICANT.into(),
            id_number: "220102199001011239".into(),
        },
        agent: None,
        unit: unit(),
        matter: matter.into(),
        circumstances,
        purpose: "foreign-currency transfer".into(),
        station: station.into(),
        decision_date: decided,
    })))
    .await?;

    let confirmed = EvidenceResult::Confirmed;
    match course {
        Course::Kinship | Course::KinshipSecondSource | Course::KinshipLate => {
            if matches!(course, Course::KinshipSecondSource) {
                case.evidence(handler, "household_archives", EvidenceResult::NotFound)
                    .await?;
            }
            case.evidence(handler, "population_information_system", confirmed)
                .await?;
            case.sign(handler).await?;
            let date = if matches!(course, Course::KinshipLate) {
                case.promised()? + Days::new(3)
            } else {
                case.on_time()?
            };
            case.issue(handler, "household_seal", date, index).await?;
        }
        Course::Death => {
            case.evidence(handler, "station_dispatch_records", confirmed)
                .await?;
            case.sign(handler).await?;
            let date = case.on_time()?;
            case.approve(&officers.leader, date).await?;
            case.issue(handler, "official_seal", date, index).await?;
        }
        Course::Cancellation => {
            case.evidence(handler, "population_information_system", confirmed)
                .await?;
            let date = case.on_time()?;
            case.issue(handler, "household_seal", date, index).await?;
        }
        Course::SameRegister | Course::AliveStatus | Course::CancellationUnrecorded => {
            case.refuse(handler, decided + Days::new(1)).await?;
        }
        Course::OverriddenToRefusal => {
            case.run(ApplicationCommand::OverrideScreening(OverrideScreening {
                actor: handler.clone(),
                outcome: OverrideOutcome::Refuse {
                    principle: "legal_document".into(),
                    referral: "出示户口簿".into(),
                },
                justification: "申请人出示的户口簿已能证明亲属关系".into(),
            }))
            .await?;
            case.refuse(handler, decided + Days::new(1)).await?;
        }
        Course::OverriddenToIssue => {
            case.run(ApplicationCommand::OverrideScreening(OverrideScreening {
                actor: handler.clone(),
                outcome: OverrideOutcome::Issue {
                    kind: "abnormal_death".into(),
                },
                justification: "接警记录显示民警曾到场处置，属非正常死亡".into(),
            }))
            .await?;
            case.evidence(handler, "police_integrated_platform", confirmed)
                .await?;
            case.sign(handler).await?;
            let date = decided + Days::new(2);
            case.approve(&officers.leader, date).await?;
            case.issue(handler, "official_seal", date, index).await?;
        }
        Course::Withdrawn => {
            case.run(ApplicationCommand::Withdraw(WithdrawApplication {
                actor: handler.clone(),
                reason: "申请人不再需要该证明".into(),
                date: decided + Days::new(1),
            }))
            .await?;
        }
        Course::Open => {
            case.evidence(handler, "household_archives", confirmed)
                .await?;
        }
    }
    Ok(case.events)
}

/// One application in [`READ_EVERY`] has its history read once by its handling officer, so
/// that the rebuild also applies the read rules.
const READ_EVERY: u64 = 4;

/// Returns the stored form of the events of aggregate `id` of `aggregate_type`, linked into its
/// chain, with the metadata the API records (actor, role, station, request id, time of
/// recording).
fn link_history<E: DomainEvent>(
    aggregate_type: &str,
    id: &str,
    events: Vec<(E, Actor)>,
) -> anyhow::Result<Vec<StoredEvent>> {
    let recorded_at = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let mut previous = GENESIS_HASH.to_string();
    let mut stored = Vec::with_capacity(events.len());
    for (index, (event, actor)) in events.into_iter().enumerate() {
        let mut row = StoredEvent {
            aggregate_type: aggregate_type.into(),
            aggregate_id: id.to_string(),
            sequence: index as u64 + 1,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(&event)?,
            metadata: json!({
                "actor": actor.officer_id,
                "actor_role": actor.role.code(),
                "actor_station": actor.station,
                "request_id": uuid::Uuid::new_v4().to_string(),
                "recorded_at": recorded_at,
            }),
        };
        previous = chain::link(&mut row, &previous)?;
        stored.push(row);
    }
    Ok(stored)
}

/// Writes `applications` complete applications spread over `stations` and returns the number
/// of events written. The events of [`INTERLEAVED`] applications at a time are interleaved
/// round by round.
pub async fn load(
    pool: &PgPool,
    services: &ApplicationServices,
    stations: &[String],
    applications: u64,
) -> anyhow::Result<u64> {
    let mut batch: Vec<StoredEvent> = Vec::with_capacity(INSERT_BATCH);
    let mut written = 0u64;
    let mut first = 0u64;
    while first < applications {
        let last = (first + INTERLEAVED as u64).min(applications);
        let mut histories = Vec::with_capacity(INTERLEAVED);
        for index in first..last {
            let station = &stations[(index as usize * 7919) % stations.len()];
            let id = format!("00000000-0000-4000-8000-{index:012}");
            let events = decide(index, station, services).await?;
            let handler = events.first().map(|(_, actor)| actor.clone());
            histories.push(link_history("application", &id, events)?.into_iter());
            // The read follows the submission: its iterator comes after the application's.
            if let Some(handler) = handler.filter(|_| index % READ_EVERY == 0) {
                let read = ApplicationReadEvent::ApplicationRead {
                    reader: handler.officer_id.clone(),
                    role: handler.role,
                    station: handler.station.clone(),
                    case_station: station.clone(),
                    view: ReadView::History,
                    purpose: "the applicant asked for a copy of the file".into(),
                };
                let read = vec![(read, handler)];
                histories.push(link_history("application_reads", &id, read)?.into_iter());
            }
        }
        loop {
            let round: Vec<StoredEvent> = histories.iter_mut().filter_map(Iterator::next).collect();
            if round.is_empty() {
                break;
            }
            for event in round {
                batch.push(event);
                written += 1;
                if batch.len() == INSERT_BATCH {
                    insert_events(pool, &batch).await?;
                    batch.clear();
                }
            }
        }
        first = last;
    }
    insert_events(pool, &batch).await?;
    Ok(written)
}

/// Figures of one rebuild run.
pub struct RebuildFigures {
    pub applications: u64,
    pub events: u64,
    pub load_seconds: f64,
    pub supervision_seconds: f64,
    pub supervision_events: usize,
    pub applications_seconds: f64,
    pub applications_events: usize,
    /// Findings after the rebuild, per rule.
    pub findings: BTreeMap<String, i64>,
}

/// Loads `applications` histories, checks their chains, and times the rebuild of the findings
/// and of the application views.
///
/// # Errors
/// Fails when a step fails or the chain check finds damage.
pub async fn run(
    pool: &PgPool,
    services: &ApplicationServices,
    stations: &[String],
    applications: u64,
) -> anyhow::Result<RebuildFigures> {
    let started = Instant::now();
    let events = load(pool, services, stations, applications).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    let chains = zhengming::verify::verify_all(pool).await?;
    anyhow::ensure!(
        chains.first_break.is_none(),
        "the loaded history fails the chain check: {:?}",
        chains.first_break
    );
    sqlx::query("ANALYZE events").execute(pool).await?;

    let today = projections::supervision::today_in_china();
    let started = Instant::now();
    let supervision_events =
        projections::supervision::rebuild(pool, &services.policies, today).await?;
    let supervision_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let applications_events = projections::projector::rebuild(pool).await?;
    let applications_seconds = started.elapsed().as_secs_f64();

    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT rule, count(*) FROM supervision_findings GROUP BY rule")
            .fetch_all(pool)
            .await?;
    Ok(RebuildFigures {
        applications,
        events,
        load_seconds,
        supervision_seconds,
        supervision_events,
        applications_seconds,
        applications_events,
        findings: rows.into_iter().collect(),
    })
}

/// Returns the findings per rule as `rule count, …`, for the report.
pub fn findings_text(findings: &BTreeMap<String, i64>) -> String {
    let parts: Vec<String> = findings
        .iter()
        .map(|(rule, count)| format!("{rule} {count}"))
        .collect();
    if parts.is_empty() {
        return "none".into();
    }
    parts.join(", ")
}
