//! The scenario and case files the demo and the tests read.

use std::collections::BTreeMap;

use serde::Deserialize;

use aggregates::record_check::CheckResult;

use crate::http::applications::{SubmitRequest, UnitBody};
use crate::registry::City;

/// The bundled case file: every situation of the domain's case list as a request.
pub const BUNDLED_CASES: &str = include_str!("../../ops/scenarios/cases.toml");
/// The bundled month of station work.
pub const BUNDLED_MONTH: &str = include_str!("../../ops/scenarios/station-month.toml");
/// The population register that the demo's exchange requests are verified against.
pub const BUNDLED_POPULATION: &str = include_str!("../../ops/scenarios/population.csv");

/// The expected screening outcome of a case.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Expectation {
    pub outcome: String,
    pub kind: Option<String>,
    pub principle: Option<String>,
}

/// A request situation with its right outcome.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    pub number: u32,
    pub situation: String,
    pub matter: String,
    pub circumstances: BTreeMap<String, bool>,
    pub unit: UnitBody,
    pub purpose: String,
    /// Outcome for a decision date after the transition period.
    pub expect: Expectation,
    /// Outcome for a decision date inside it.
    pub transition: Expectation,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

/// Parses a case file.
///
/// # Errors
/// Fails on malformed TOML.
pub fn parse_cases(text: &str) -> anyhow::Result<Vec<Case>> {
    Ok(toml::from_str::<CaseFile>(text)?.cases)
}

impl Case {
    /// Builds the submission for this case with the given applicant and decision date.
    pub fn request(
        &self,
        name: &str,
        id_number: &str,
        decision_date: chrono::NaiveDate,
    ) -> SubmitRequest {
        SubmitRequest {
            applicant: crate::http::applications::PersonBody {
                name: name.to_string(),
                id_number: id_number.to_string(),
            },
            agent: None,
            unit: self.unit.clone(),
            matter: self.matter.clone(),
            circumstances: self.circumstances.clone(),
            purpose: self.purpose.clone(),
            station: None,
            decision_date: Some(decision_date),
        }
    }
}

/// The steps a station takes with an application after screening.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    Issue,
    Refuse,
    Override,
    Withdraw,
    Referred,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Situation {
    pub case: u32,
    pub count: u32,
    pub path: Path,
    pub explanation: Option<String>,
    pub justification: Option<String>,
}

/// A submission the API must reject, made by changing fields of a case's request.
#[derive(Clone, Debug, Deserialize)]
pub struct BadInput {
    pub name: String,
    pub case: u32,
    /// Dotted field paths and the values to put there.
    pub set: BTreeMap<String, toml::Value>,
    pub status: u16,
    pub code: String,
}

/// A month of station work.
#[derive(Clone, Debug, Deserialize)]
pub struct Scenario {
    /// The month, as YYYY-MM.
    pub month: String,
    pub city: City,
    pub situations: Vec<Situation>,
    #[serde(default)]
    pub bad_inputs: Vec<BadInput>,
    pub exchange: Option<ExchangeScenario>,
    #[serde(default)]
    pub record_checks: Vec<RecordCheckSituation>,
    #[serde(default)]
    pub unit_visits: Vec<UnitVisitSituation>,
}

/// Information exchange of one household-administration unit during the month.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeScenario {
    /// City or county code of the unit.
    pub unit: String,
    /// Station leader in the unit who registers departments and agreements.
    pub leader: String,
    pub responsible_officer: String,
    pub requests: Vec<ExchangeScenarioRequest>,
}

/// A department, registered before its first request.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDepartment {
    pub code: String,
    pub name: String,
    pub kind: String,
}

/// One exchange request, under its own agreement with the department.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeScenarioRequest {
    pub department: ScenarioDepartment,
    pub cadence: String,
    pub items: Vec<String>,
    pub received_at: String,
    pub delivered_at: String,
    /// `on_time` or `late`, as the deadline rule must conclude.
    pub timeliness: String,
    pub receiving_person: String,
    /// The subject batch as the department sends it, in CSV.
    pub subjects: String,
}

/// No-criminal-record applications of one kind: every mandatory source is checked, the first
/// with `finding` and the rest with no record.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordCheckSituation {
    pub count: u32,
    pub purpose: String,
    pub destination: String,
    pub finding: CheckResult,
    /// `issued` or `refused`: what the policy makes of the finding.
    pub expect: String,
    /// Explanation of the refusal, for `expect = "refused"`.
    pub explanation: Option<String>,
}

/// Unit verification visits of one kind.
#[derive(Clone, Debug, Deserialize)]
pub struct UnitVisitSituation {
    pub count: u32,
    pub unit: crate::http::unit_visits::VisitingUnitBody,
    pub purpose: String,
    /// Information disclosed to the unit after the check.
    pub disclosed: String,
    /// The unit's need for a written certificate; without it the visit ends with the disclosure.
    pub certificate_need: Option<String>,
    /// Final status: `refused`, `checked` or `certificate_issued`.
    pub expect: String,
}

/// Parses a scenario file.
///
/// # Errors
/// Fails on malformed TOML.
pub fn parse_scenario(text: &str) -> anyhow::Result<Scenario> {
    Ok(toml::from_str(text)?)
}
