//! Inspections (督察检查) by discipline, inspectorate or household-administration inspectors.
//! An inspector opens an inspection of a station, an officer or a case and records findings.
//! The inspector may publish notices (通报) and require rectification (整改) by a date, verifies
//! what the station reports, and closes the inspection with an accountability decision.
//!
//! Inspectors act on the inspection; a leader of the inspected station reports the
//! rectification. Every step is an event of the inspection's hash chain.

use chrono::{Days, NaiveDate};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::application::{Actor, ApplicationError, ApplicationServices, Result};
use crate::policy::Role;

#[cfg(test)]
mod tests;

/// Minimum length, in characters, of a reason, finding, notice, requirement or report.
pub const MIN_TEXT_CHARS: usize = 10;

/// Maximum time, in days, an inspector may give a station to rectify.
pub const MAX_RECTIFICATION_DAYS: u64 = 366;

/// The department an inspector belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InspectingBody {
    /// 纪检
    Discipline,
    /// 督察
    Inspectorate,
    /// 户政
    HouseholdAdministration,
}

/// The kind of target an inspection examines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Station,
    Officer,
    Application,
    RecordCheck,
    UnitVisit,
}

/// The two kinds of wrongdoing the notice names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 不作为: refusing or delaying what the rules require.
    Inaction,
    /// 乱作为: acting against the rules.
    Misconduct,
}

/// The accountability decision that closes an inspection, from none to a disciplinary
/// sanction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No one is held accountable.
    NoAccountability,
    /// 批评教育
    CriticismAndEducation,
    /// 诫勉谈话
    Admonishment,
    /// 通报批评
    NotifiedCriticism,
    /// 停止执行职务
    SuspensionFromDuty,
    /// 党纪政务处分
    DisciplinarySanction,
}

/// The stage of an inspection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    #[default]
    NotOpened,
    /// Findings may be recorded, notices published, rectification required.
    Open,
    /// The station must rectify by the due date.
    RectificationRequired,
    /// The station reported its rectification; an inspector verifies it.
    RectificationReported,
    Closed,
}

/// A finding as the inspection records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionFinding {
    pub number: u32,
    pub category: Category,
    /// Code of the detector rule the finding comes from; `None` for one found by hand.
    pub rule: Option<String>,
    /// Id of the case the finding concerns, if any.
    pub case_id: Option<String>,
    /// The officer whose act or omission the finding concerns, if one is named.
    pub officer: Option<String>,
    pub description: String,
    pub inspector: String,
    pub found_on: NaiveDate,
}

/// One round of rectification: required, reported, verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rectification {
    pub round: u32,
    pub requirement: String,
    pub required_on: NaiveDate,
    pub due_on: NaiveDate,
    pub report: Option<String>,
    pub reported_by: Option<String>,
    pub reported_on: Option<NaiveDate>,
    /// `Some(true)` once an inspector accepted it, `Some(false)` if rejected.
    pub accepted: Option<bool>,
    pub verification_note: Option<String>,
    pub verified_on: Option<NaiveDate>,
}

/// The decision that closed the inspection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closing {
    pub outcome: Outcome,
    pub officers: Vec<String>,
    pub reason: String,
    pub inspector: String,
    pub closed_on: NaiveDate,
}

/// A published notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub text: String,
    pub inspector: String,
    pub published_on: NaiveDate,
    /// The area the notice is addressed to; the inspected station when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Audience>,
}

/// Level of an area a notice is addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    Station,
    County,
    City,
    Province,
}

impl AreaLevel {
    /// Returns the level's code, as the API and the projection write it.
    pub fn code(self) -> &'static str {
        match self {
            AreaLevel::Station => "station",
            AreaLevel::County => "county",
            AreaLevel::City => "city",
            AreaLevel::Province => "province",
        }
    }
}

/// An area a notice is addressed to, so that the stations of a county, a city or the province
/// learn from what one station did: the inspected station or an area that contains it. The
/// server checks that the area contains the station before the notice is published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    pub level: AreaLevel,
    pub code: String,
}

/// The state of one inspection, rebuilt from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub status: InspectionStatus,
    pub body: Option<InspectingBody>,
    pub target_kind: Option<TargetKind>,
    pub target_id: String,
    /// The station the target belongs to; its leaders report rectification.
    pub station: String,
    pub opened_by: String,
    pub reason: String,
    pub opened_on: Option<NaiveDate>,
    pub findings: Vec<InspectionFinding>,
    /// Date of the latest step; each step is dated on or after it.
    pub last_step_on: Option<NaiveDate>,
    pub notices: Vec<Notice>,
    pub rectifications: Vec<Rectification>,
    pub closing: Option<Closing>,
}

/// Opens an inspection. The server resolves the station of the target.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenInspection {
    pub actor: Actor,
    pub body: InspectingBody,
    pub target_kind: TargetKind,
    pub target_id: String,
    pub station: String,
    pub reason: String,
    pub date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordFinding {
    pub actor: Actor,
    pub category: Category,
    pub rule: Option<String>,
    pub case_id: Option<String>,
    pub officer: Option<String>,
    /// The station of `officer`, as the server's registry records it.
    pub officer_station: Option<String>,
    pub description: String,
    pub date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PublishNotice {
    pub actor: Actor,
    pub text: String,
    pub date: NaiveDate,
    /// The area addressed, checked by the server against the inspected station's areas.
    pub audience: Option<Audience>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequireRectification {
    pub actor: Actor,
    pub requirement: String,
    pub due_on: NaiveDate,
    pub date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReportRectification {
    pub actor: Actor,
    pub report: String,
    pub date: NaiveDate,
}

/// An inspector's verdict on the reported rectification. A rejection needs the new due date.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifyRectification {
    pub actor: Actor,
    pub accepted: bool,
    pub note: String,
    pub next_due_on: Option<NaiveDate>,
    pub date: NaiveDate,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CloseInspection {
    pub actor: Actor,
    pub outcome: Outcome,
    pub officers: Vec<String>,
    pub reason: String,
    pub date: NaiveDate,
}

/// Every command an inspection accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum InspectionCommand {
    Open(OpenInspection),
    RecordFinding(RecordFinding),
    PublishNotice(PublishNotice),
    RequireRectification(RequireRectification),
    ReportRectification(ReportRectification),
    VerifyRectification(VerifyRectification),
    Close(CloseInspection),
}

impl InspectionCommand {
    /// Returns the officer who sent the command.
    pub fn actor(&self) -> &Actor {
        match self {
            InspectionCommand::Open(command) => &command.actor,
            InspectionCommand::RecordFinding(command) => &command.actor,
            InspectionCommand::PublishNotice(command) => &command.actor,
            InspectionCommand::RequireRectification(command) => &command.actor,
            InspectionCommand::ReportRectification(command) => &command.actor,
            InspectionCommand::VerifyRectification(command) => &command.actor,
            InspectionCommand::Close(command) => &command.actor,
        }
    }
}

/// Every event of an inspection. Payloads carry integers, strings, booleans and arrays of
/// strings only, so that their canonical encoding is exact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InspectionEvent {
    InspectionOpened {
        body: InspectingBody,
        target_kind: TargetKind,
        target_id: String,
        station: String,
        inspector: String,
        reason: String,
        opened_on: NaiveDate,
    },
    FindingRecorded {
        number: u32,
        category: Category,
        rule: Option<String>,
        case_id: Option<String>,
        officer: Option<String>,
        description: String,
        inspector: String,
        found_on: NaiveDate,
    },
    NoticePublished {
        text: String,
        inspector: String,
        published_on: NaiveDate,
        /// Absent in notices to the inspected station, and in every notice recorded before
        /// notices could be addressed to an area.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        audience: Option<Audience>,
    },
    RectificationRequired {
        round: u32,
        requirement: String,
        inspector: String,
        required_on: NaiveDate,
        due_on: NaiveDate,
    },
    RectificationReported {
        round: u32,
        report: String,
        leader: String,
        reported_on: NaiveDate,
    },
    /// An inspector accepted the rectification, or rejected it and set a new due date.
    RectificationVerified {
        round: u32,
        accepted: bool,
        note: String,
        inspector: String,
        verified_on: NaiveDate,
        next_due_on: Option<NaiveDate>,
    },
    InspectionClosed {
        outcome: Outcome,
        officers: Vec<String>,
        reason: String,
        inspector: String,
        closed_on: NaiveDate,
    },
}

impl InspectionEvent {
    /// Returns the date the event records for its step.
    pub fn step_on(&self) -> NaiveDate {
        match self {
            InspectionEvent::InspectionOpened { opened_on, .. } => *opened_on,
            InspectionEvent::FindingRecorded { found_on, .. } => *found_on,
            InspectionEvent::NoticePublished { published_on, .. } => *published_on,
            InspectionEvent::RectificationRequired { required_on, .. } => *required_on,
            InspectionEvent::RectificationReported { reported_on, .. } => *reported_on,
            InspectionEvent::RectificationVerified { verified_on, .. } => *verified_on,
            InspectionEvent::InspectionClosed { closed_on, .. } => *closed_on,
        }
    }
}

impl DomainEvent for InspectionEvent {
    fn event_type(&self) -> String {
        match self {
            InspectionEvent::InspectionOpened { .. } => "InspectionOpened",
            InspectionEvent::FindingRecorded { .. } => "FindingRecorded",
            InspectionEvent::NoticePublished { .. } => "NoticePublished",
            InspectionEvent::RectificationRequired { .. } => "RectificationRequired",
            InspectionEvent::RectificationReported { .. } => "RectificationReported",
            InspectionEvent::RectificationVerified { .. } => "RectificationVerified",
            InspectionEvent::InspectionClosed { .. } => "InspectionClosed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

impl Aggregate for Inspection {
    const TYPE: &'static str = "inspection";
    type Command = InspectionCommand;
    type Event = InspectionEvent;
    type Error = ApplicationError;
    type Services = ApplicationServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<()> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let step_on = event.step_on();
        self.last_step_on = Some(self.last_step_on.map_or(step_on, |last| last.max(step_on)));
        match event {
            InspectionEvent::InspectionOpened {
                body,
                target_kind,
                target_id,
                station,
                inspector,
                reason,
                opened_on,
            } => {
                self.status = InspectionStatus::Open;
                self.body = Some(body);
                self.target_kind = Some(target_kind);
                self.target_id = target_id;
                self.station = station;
                self.opened_by = inspector;
                self.reason = reason;
                self.opened_on = Some(opened_on);
            }
            InspectionEvent::FindingRecorded {
                number,
                category,
                rule,
                case_id,
                officer,
                description,
                inspector,
                found_on,
            } => self.findings.push(InspectionFinding {
                number,
                category,
                rule,
                case_id,
                officer,
                description,
                inspector,
                found_on,
            }),
            InspectionEvent::NoticePublished {
                text,
                inspector,
                published_on,
                audience,
            } => self.notices.push(Notice {
                text,
                inspector,
                published_on,
                audience,
            }),
            InspectionEvent::RectificationRequired {
                round,
                requirement,
                required_on,
                due_on,
                ..
            } => {
                self.status = InspectionStatus::RectificationRequired;
                self.rectifications.push(Rectification {
                    round,
                    requirement,
                    required_on,
                    due_on,
                    report: None,
                    reported_by: None,
                    reported_on: None,
                    accepted: None,
                    verification_note: None,
                    verified_on: None,
                });
            }
            InspectionEvent::RectificationReported {
                report,
                leader,
                reported_on,
                ..
            } => {
                self.status = InspectionStatus::RectificationReported;
                if let Some(round) = self.rectifications.last_mut() {
                    round.report = Some(report);
                    round.reported_by = Some(leader);
                    round.reported_on = Some(reported_on);
                }
            }
            InspectionEvent::RectificationVerified {
                round,
                accepted,
                note,
                verified_on,
                next_due_on,
                ..
            } => {
                if let Some(last) = self.rectifications.last_mut() {
                    last.accepted = Some(accepted);
                    last.verification_note = Some(note.clone());
                    last.verified_on = Some(verified_on);
                }
                match next_due_on {
                    // A rejected rectification opens the next round with the same requirement.
                    Some(due_on) if !accepted => {
                        let requirement = self
                            .rectifications
                            .last()
                            .map(|last| last.requirement.clone())
                            .unwrap_or_default();
                        self.rectifications.push(Rectification {
                            round: round + 1,
                            requirement,
                            required_on: verified_on,
                            due_on,
                            report: None,
                            reported_by: None,
                            reported_on: None,
                            accepted: None,
                            verification_note: None,
                            verified_on: None,
                        });
                        self.status = InspectionStatus::RectificationRequired;
                    }
                    _ => self.status = InspectionStatus::Open,
                }
            }
            InspectionEvent::InspectionClosed {
                outcome,
                officers,
                reason,
                inspector,
                closed_on,
            } => {
                self.status = InspectionStatus::Closed;
                self.closing = Some(Closing {
                    outcome,
                    officers,
                    reason,
                    inspector,
                    closed_on,
                });
            }
        }
    }
}

impl Inspection {
    /// Returns the stage of the inspection.
    pub fn stage(&self) -> InspectionStatus {
        self.status
    }

    /// Decides the events a command produces.
    ///
    /// # Errors
    /// Returns the first rule the command breaks; nothing is recorded for it.
    pub fn decide(&self, command: InspectionCommand) -> Result<Vec<InspectionEvent>> {
        if let InspectionCommand::ReportRectification(command) = command {
            return self.report_rectification(command);
        }
        let actor = command.actor();
        if actor.role != Role::Inspector {
            let message = format!(
                "inspections are opened and decided by inspectors; the officer's role is {}",
                actor.role.code()
            );
            return Err(ApplicationError::forbidden(
                "inspectors_only",
                "role",
                message,
            ));
        }
        if let InspectionCommand::Open(command) = command {
            return self.open(command);
        }
        let last_step_on = self.last_step_on.ok_or(ApplicationError::NotFound)?;
        if self.stage() == InspectionStatus::Closed {
            return Err(ApplicationError::conflict(
                "inspection_closed",
                "the inspection is closed and accepts no further step",
            ));
        }
        match command {
            InspectionCommand::Open(_) | InspectionCommand::ReportRectification(_) => {
                unreachable!("handled above")
            }
            InspectionCommand::RecordFinding(command) => {
                not_before(command.date, last_step_on, "date", "the previous step")?;
                require_written(&command.description, "description")?;
                if let (Some(station), Some(officer)) = (&command.officer_station, &command.officer)
                    && station != &self.station
                {
                    let message = format!(
                        "officer {officer} belongs to station {station}, not to the inspected station {}",
                        self.station
                    );
                    return Err(ApplicationError::rejected(
                        "officer_of_other_station",
                        "officer",
                        message,
                    ));
                }
                let optional = |value: Option<String>| {
                    value
                        .map(|text| text.trim().to_string())
                        .filter(|text| !text.is_empty())
                };
                Ok(vec![InspectionEvent::FindingRecorded {
                    number: self.findings.len() as u32 + 1,
                    category: command.category,
                    rule: optional(command.rule),
                    case_id: optional(command.case_id),
                    officer: optional(command.officer),
                    description: command.description.trim().to_string(),
                    inspector: command.actor.officer_id,
                    found_on: command.date,
                }])
            }
            InspectionCommand::PublishNotice(command) => {
                self.require_findings("a notice")?;
                not_before(command.date, last_step_on, "date", "the previous step")?;
                require_written(&command.text, "text")?;
                // A notice to the inspected station itself is recorded as before, without an area.
                let audience = command.audience.filter(|area| {
                    !(area.level == AreaLevel::Station && area.code == self.station)
                });
                Ok(vec![InspectionEvent::NoticePublished {
                    text: command.text.trim().to_string(),
                    inspector: command.actor.officer_id,
                    published_on: command.date,
                    audience,
                }])
            }
            InspectionCommand::RequireRectification(command) => {
                self.require_findings("rectification")?;
                self.require_stage(InspectionStatus::Open, "require rectification")?;
                not_before(command.date, last_step_on, "date", "the previous step")?;
                require_written(&command.requirement, "requirement")?;
                check_due(command.due_on, command.date, "due_on")?;
                Ok(vec![InspectionEvent::RectificationRequired {
                    round: self.rectifications.len() as u32 + 1,
                    requirement: command.requirement.trim().to_string(),
                    inspector: command.actor.officer_id,
                    required_on: command.date,
                    due_on: command.due_on,
                }])
            }
            InspectionCommand::VerifyRectification(command) => {
                self.require_stage(InspectionStatus::RectificationReported, "verify it")?;
                let round = self.rectifications.last().expect("a reported round");
                not_before(command.date, last_step_on, "date", "the previous step")?;
                require_written(&command.note, "note")?;
                let next_due_on = match (command.accepted, command.next_due_on) {
                    (true, None) => None,
                    (true, Some(_)) => {
                        return Err(ApplicationError::invalid(
                            "unexpected_field",
                            "next_due_on",
                            "next_due_on is for a rejected rectification; leave it out when accepting",
                        ));
                    }
                    (false, None) => {
                        return Err(ApplicationError::invalid(
                            "missing_field",
                            "next_due_on",
                            "a rejected rectification needs next_due_on, the date the station must rectify by",
                        ));
                    }
                    (false, Some(due_on)) => {
                        check_due(due_on, command.date, "next_due_on")?;
                        Some(due_on)
                    }
                };
                Ok(vec![InspectionEvent::RectificationVerified {
                    round: round.round,
                    accepted: command.accepted,
                    note: command.note.trim().to_string(),
                    inspector: command.actor.officer_id,
                    verified_on: command.date,
                    next_due_on,
                }])
            }
            InspectionCommand::Close(command) => self.close(command, last_step_on),
        }
    }

    fn open(&self, command: OpenInspection) -> Result<Vec<InspectionEvent>> {
        if self.opened_on.is_some() {
            return Err(ApplicationError::conflict(
                "already_opened",
                "this inspection is already open",
            ));
        }
        let target_id = command.target_id.trim().to_string();
        if target_id.is_empty() {
            return Err(ApplicationError::invalid(
                "missing_field",
                "target.id",
                "target.id is required: the station code, officer id or case id to inspect",
            ));
        }
        require_written(&command.reason, "reason")?;
        Ok(vec![InspectionEvent::InspectionOpened {
            body: command.body,
            target_kind: command.target_kind,
            target_id,
            station: command.station,
            inspector: command.actor.officer_id,
            reason: command.reason.trim().to_string(),
            opened_on: command.date,
        }])
    }

    fn report_rectification(&self, command: ReportRectification) -> Result<Vec<InspectionEvent>> {
        let actor = &command.actor;
        if self.opened_on.is_none() {
            return Err(ApplicationError::NotFound);
        }
        if actor.role != Role::StationLeader || actor.station != self.station {
            let message = format!(
                "rectification is reported by a leader of the inspected station {}",
                self.station
            );
            return Err(ApplicationError::forbidden(
                "station_leader_only",
                "role",
                message,
            ));
        }
        self.require_stage(InspectionStatus::RectificationRequired, "report it")?;
        let round = self.rectifications.last().expect("a required round");
        let last_step_on = self.last_step_on.unwrap_or(round.required_on);
        not_before(command.date, last_step_on, "date", "the previous step")?;
        require_written(&command.report, "report")?;
        Ok(vec![InspectionEvent::RectificationReported {
            round: round.round,
            report: command.report.trim().to_string(),
            leader: command.actor.officer_id,
            reported_on: command.date,
        }])
    }

    fn close(
        &self,
        command: CloseInspection,
        last_step_on: NaiveDate,
    ) -> Result<Vec<InspectionEvent>> {
        match self.stage() {
            InspectionStatus::RectificationRequired | InspectionStatus::RectificationReported => {
                return Err(ApplicationError::conflict(
                    "rectification_pending",
                    "the required rectification is not yet reported and accepted; verify it before closing",
                ));
            }
            _ => {}
        }
        not_before(command.date, last_step_on, "date", "the previous step")?;
        require_written(&command.reason, "reason")?;
        let mut officers: Vec<String> = command
            .officers
            .iter()
            .map(|officer| officer.trim().to_string())
            .filter(|officer| !officer.is_empty())
            .collect();
        officers.sort();
        officers.dedup();
        if command.outcome == Outcome::NoAccountability {
            if !officers.is_empty() {
                return Err(ApplicationError::invalid(
                    "unexpected_field",
                    "officers",
                    "no_accountability holds no officer accountable; leave officers empty or choose another outcome",
                ));
            }
        } else {
            if self.findings.is_empty() {
                return Err(ApplicationError::rejected(
                    "no_findings",
                    "outcome",
                    "an officer is held accountable only on recorded findings; record the findings first or close with no_accountability",
                ));
            }
            if officers.is_empty() {
                return Err(ApplicationError::invalid(
                    "missing_field",
                    "officers",
                    "name the officers the decision holds accountable",
                ));
            }
            // Accountability rests on the findings: an officer is named in one of them, or is
            // the officer the inspection examines.
            let examined = |officer: &String| {
                self.findings
                    .iter()
                    .any(|finding| finding.officer.as_ref() == Some(officer))
                    || (self.target_kind == Some(TargetKind::Officer) && &self.target_id == officer)
            };
            if let Some(officer) = officers.iter().find(|officer| !examined(officer)) {
                let message = format!(
                    "officer {officer} is named in no finding of this inspection; record a finding naming the officer first"
                );
                return Err(ApplicationError::rejected(
                    "officer_not_in_findings",
                    "officers",
                    message,
                ));
            }
        }
        Ok(vec![InspectionEvent::InspectionClosed {
            outcome: command.outcome,
            officers,
            reason: command.reason.trim().to_string(),
            inspector: command.actor.officer_id,
            closed_on: command.date,
        }])
    }

    fn require_findings(&self, what: &str) -> Result<()> {
        if self.findings.is_empty() {
            let message = format!("{what} rests on findings; record at least one finding first");
            return Err(ApplicationError::conflict("no_findings", message));
        }
        Ok(())
    }

    fn require_stage(&self, stage: InspectionStatus, action: &str) -> Result<()> {
        if self.stage() == stage {
            return Ok(());
        }
        let current = match self.stage() {
            InspectionStatus::RectificationRequired => {
                "rectification is required and not yet reported"
            }
            InspectionStatus::RectificationReported => {
                "the station reported its rectification, which awaits verification"
            }
            InspectionStatus::Open => "no rectification is pending",
            InspectionStatus::NotOpened | InspectionStatus::Closed => "the inspection is not open",
        };
        let message = format!("cannot {action}: {current}");
        Err(ApplicationError::conflict("wrong_stage", message))
    }
}

/// Rejects a text shorter than [`MIN_TEXT_CHARS`].
pub(crate) fn require_written(text: &str, field: &str) -> Result<()> {
    if text.trim().chars().count() < MIN_TEXT_CHARS {
        let message =
            format!("{field} must be written out in at least {MIN_TEXT_CHARS} characters");
        return Err(ApplicationError::invalid("text_too_short", field, message));
    }
    Ok(())
}

fn not_before(date: NaiveDate, earliest: NaiveDate, field: &str, what: &str) -> Result<()> {
    if date < earliest {
        let message =
            format!("{field} {date} is before {what} ({earliest}); use a date on or after it");
        return Err(ApplicationError::invalid(
            "date_out_of_order",
            field,
            message,
        ));
    }
    Ok(())
}

fn check_due(due_on: NaiveDate, date: NaiveDate, field: &str) -> Result<()> {
    let latest = date + Days::new(MAX_RECTIFICATION_DAYS);
    if due_on <= date || due_on > latest {
        let message = format!(
            "{field} {due_on} must be after {date} and at most {MAX_RECTIFICATION_DAYS} days later (by {latest})"
        );
        return Err(ApplicationError::invalid(
            "due_date_out_of_range",
            field,
            message,
        ));
    }
    Ok(())
}
