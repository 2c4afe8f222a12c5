//! The versioned policy document: certificate catalogue, refusal principles, matters with
//! their screening rules, the transition window and the working-day calendar.
//!
//! The provincial office changes policy as data. Every screening decision records the version
//! and the rule that produced it, so a case decided under one version is replayed under it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::calendar::{CalendarError, WorkingDayCalendar};

mod document;
mod screening;

pub use document::PolicyDocument;
pub use screening::{
    Circumstances, Outcome, RequestingUnit, ScreeningDecision, ScreeningError, UNIT_LEVELS,
};

/// A station role that can act on an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 户籍民警: kinship, household-item change, resident identity information.
    HouseholdOfficer,
    /// 社区民警: abnormal death, found infant, investigations.
    CommunityOfficer,
    /// 办案民警: the officer of the station that handles a criminal case.
    CaseOfficer,
    /// 所领导: approves where the catalogue requires it.
    StationLeader,
    /// 督察: a discipline or inspectorate officer who supervises stations. Reads the supervision
    /// findings, case replays, compliance reports and criminal-record results of every station,
    /// each result read recorded, and acts on no application or exchange request.
    Inspector,
    /// 省厅户政: an officer of the provincial office. Acknowledges and answers the problems
    /// stations report, reads the supervision records and compliance reports of every station,
    /// and acts on no application or exchange request.
    ProvincialOfficer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::HouseholdOfficer,
        Role::CommunityOfficer,
        Role::CaseOfficer,
        Role::StationLeader,
        Role::Inspector,
        Role::ProvincialOfficer,
    ];

    /// Returns the snake_case code used in the API, the policy and the database.
    pub fn code(self) -> &'static str {
        match self {
            Role::HouseholdOfficer => "household_officer",
            Role::CommunityOfficer => "community_officer",
            Role::CaseOfficer => "case_officer",
            Role::StationLeader => "station_leader",
            Role::Inspector => "inspector",
            Role::ProvincialOfficer => "provincial_officer",
        }
    }

    /// Whether the role supervises stations rather than handling cases: inspectors and
    /// provincial officers read every station and act on no application, record check, unit
    /// visit or exchange request.
    pub fn supervises(self) -> bool {
        matches!(self, Role::Inspector | Role::ProvincialOfficer)
    }

    /// Parses a role code; returns `None` for an unknown code.
    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.code() == code)
    }
}

/// One of the two seals a police station owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seal {
    /// 户口专用章
    HouseholdSeal,
    /// 公章
    OfficialSeal,
}

impl Seal {
    /// Returns the snake_case code used in the API and the policy.
    pub fn code(self) -> &'static str {
        match self {
            Seal::HouseholdSeal => "household_seal",
            Seal::OfficialSeal => "official_seal",
        }
    }
}

/// A certificate kind of the catalogue and what issuing it requires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateKind {
    pub code: String,
    pub name: String,
    /// Roles that may handle and issue this kind.
    pub handling_roles: Vec<Role>,
    /// Sources an evidence check may cite; issuance needs one confirming check from them.
    pub evidence_sources: Vec<String>,
    pub stub_signature: bool,
    pub leader_approval: bool,
    pub seal: Seal,
    /// Working days from the decision date to the promised completion date.
    pub time_limit_working_days: u32,
}

/// One of the four principles under which a station does not issue (四个一律不出).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Principle {
    pub code: String,
    pub name: String,
    pub description: String,
}

/// The period after the notice in which stations still issue what is asked (过渡时期).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitionWindow {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl TransitionWindow {
    /// Tells whether `date` lies inside the window, both ends included.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && date <= self.end
    }
}

/// A condition on a request; every part that is present must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Circumstances with the value they must have.
    #[serde(default)]
    pub circumstances: BTreeMap<String, bool>,
    /// Requesting-unit types the rule applies to; empty means any.
    #[serde(default)]
    pub unit_types: Vec<String>,
    /// Whether a provincial-or-higher rule must (or must not) require the certificate.
    #[serde(default)]
    pub provincial_rule_requires: Option<bool>,
}

/// What a rule decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleOutcome {
    /// Issue a certificate of `kind`.
    Issue { kind: String },
    /// Refuse under `principle`, referring the citizen to `referral`. Inside the transition
    /// window the station issues `transitional_kind` instead, or explains that it cannot issue
    /// when no police record supports the fact.
    Refuse {
        principle: String,
        referral: String,
        #[serde(default)]
        transitional_kind: Option<String>,
    },
    /// The matter is answered to a qualifying unit by in-person unit verification (单位核查),
    /// never by a certificate to the individual.
    UnitVerification { referral: String },
}

/// A screening rule: the first rule whose condition is true decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    #[serde(default)]
    pub when: Condition,
    #[serde(flatten)]
    pub then: RuleOutcome,
}

/// A fact someone may ask a station to prove, with the circumstances its rules read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Matter {
    pub code: String,
    pub description: String,
    /// Circumstances a request for this matter must state.
    #[serde(default)]
    pub circumstances: Vec<String>,
    /// Kind issued inside the transition window when the deciding rule names none.
    #[serde(default)]
    pub transitional_kind: Option<String>,
    pub rules: Vec<Rule>,
}

/// A loaded and checked policy version.
#[derive(Clone, Debug)]
pub struct Policy {
    pub version: String,
    pub kinds: BTreeMap<String, CertificateKind>,
    pub principles: BTreeMap<String, Principle>,
    /// Rules checked before a matter's own rules, in order.
    pub gates: Vec<Rule>,
    pub matters: BTreeMap<String, Matter>,
    /// Requesting-unit types by code, with their descriptions.
    pub unit_types: BTreeMap<String, String>,
    pub transition: TransitionWindow,
    pub calendar: WorkingDayCalendar,
    /// No-criminal-record certificates and unit verification.
    pub criminal_records: crate::record_check::CriminalRecordPolicy,
    /// Information items and cadence deadlines of information exchange.
    pub exchange: crate::exchange::policy::ExchangePolicy,
}

/// Reason a policy document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy document is not valid TOML: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("policy calendar is invalid: {0}")]
    Calendar(#[from] CalendarError),
    #[error("policy {field} is invalid: {message}")]
    Invalid { field: String, message: String },
}

impl Policy {
    /// Parses a policy document and its calendar, and checks that every code it references is
    /// defined.
    ///
    /// # Errors
    /// Fails on malformed TOML or CSV, on a duplicate code or rule id, on a reference to an
    /// unknown kind or principle, and on a matter whose rules can leave a request undecided.
    pub fn load(document: &str, calendar_csv: &str) -> Result<Policy, PolicyError> {
        let document: PolicyDocument = toml::from_str(document)?;
        let calendar = WorkingDayCalendar::from_csv_str(calendar_csv)?;
        document.into_policy(calendar)
    }

    /// Returns the catalogue entry of `code`, if the catalogue has it.
    pub fn kind(&self, code: &str) -> Option<&CertificateKind> {
        self.kinds.get(code)
    }

    /// Returns the set of every evidence source that any kind accepts.
    pub fn evidence_sources(&self) -> BTreeSet<&str> {
        let sources = self.kinds.values().flat_map(|kind| &kind.evidence_sources);
        sources.map(String::as_str).collect()
    }
}

/// The policy versions loaded on a server; each decision uses the version in force for it.
#[derive(Clone, Debug)]
pub struct PolicyBook {
    versions: BTreeMap<String, Policy>,
    current: String,
}

impl PolicyBook {
    /// Creates a book whose current version is `policy`.
    pub fn new(policy: Policy) -> PolicyBook {
        let current = policy.version.clone();
        let versions = BTreeMap::from([(current.clone(), policy)]);
        PolicyBook { versions, current }
    }

    /// Returns the version new applications are screened under.
    pub fn current(&self) -> &Policy {
        &self.versions[&self.current]
    }

    /// Returns the policy of `version`, if this server has it.
    pub fn version(&self, version: &str) -> Option<&Policy> {
        self.versions.get(version)
    }
}

/// The policy and calendar that ship with this release.
pub mod bundled {
    /// The policy document in force.
    pub const DOCUMENT: &str = include_str!("../../policy/policy.toml");
    /// The State Council working-day calendar the policy counts deadlines with.
    pub const CALENDAR_CSV: &str = include_str!("../../policy/holidays-cn.csv");
}
