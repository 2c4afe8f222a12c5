//! One station's desk in the demo: the officers who take, decide and issue applications.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use aggregates::id_number::IdNumber;
use aggregates::policy::Role;
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::client::ApiClient;
use super::scenario::{BadInput, Case, Expectation, Path, Situation};
use crate::registry::Station;

mod criminal;

/// Counts and mismatches of a demo run.
#[derive(Debug, Default)]
pub struct Outcome {
    pub commands: u64,
    pub rejected: u64,
    pub public_checks: u64,
    /// Final statuses of no-criminal-record applications and unit visits, by workflow.
    pub criminal_records: BTreeMap<String, u64>,
    pub mismatches: Vec<String>,
}

/// The officers of one station, with their tokens.
pub struct StationDesk {
    client: ApiClient,
    code: String,
    /// Officer id and token by role; the first officer of each role works the desk.
    officers: BTreeMap<Role, (String, String)>,
}

/// Surnames and given names for synthetic applicants.
const SURNAMES: [&str; 8] = ["张", "王", "李", "赵", "刘", "陈", "杨", "黄"];
const GIVEN_NAMES: [&str; 6] = ["伟", "芳", "娜", "敏", "静", "磊"];

/// Returns a synthetic applicant: a name and a valid ID number that no real person is known to
/// hold (address code of Nanguan district, birth dates spread over 1950–1999).
fn applicant(index: u32) -> (String, String) {
    let name = format!(
        "{}{}",
        SURNAMES[index as usize % SURNAMES.len()],
        GIVEN_NAMES[index as usize / SURNAMES.len() % GIVEN_NAMES.len()]
    );
    let year = 50 + index % 50;
    let month = 1 + index % 12;
    let day = 1 + index % 28;
    let sequence = 100 + index % 900;
    let old_form = format!("220102{year:02}{month:02}{day:02}{sequence:03}");
    let number =
        IdNumber::upgrade_from_15(&old_form).expect("the generated date and digits are valid");
    (name, number.as_str().to_string())
}

impl StationDesk {
    pub fn new(address: SocketAddr, station: &Station, tokens: &BTreeMap<String, String>) -> Self {
        let mut officers = BTreeMap::new();
        for officer in &station.officers {
            if let Some(token) = tokens.get(&officer.id) {
                officers
                    .entry(officer.role)
                    .or_insert_with(|| (officer.id.clone(), token.clone()));
            }
        }
        StationDesk {
            client: ApiClient::new(format!("http://{address}")),
            code: station.code.clone(),
            officers,
        }
    }

    fn token(&self, role: Role) -> anyhow::Result<&str> {
        let (_, token) = self
            .officers
            .get(&role)
            .ok_or_else(|| anyhow::anyhow!("station {} has no {}", self.code, role.code()))?;
        Ok(token)
    }

    /// Role that receives the case: the handler of the kind it leads to, else the household
    /// officer.
    fn receiving_role(case: &Case, path: Path) -> Role {
        let kind = match path {
            Path::Override => case.transition.kind.as_deref(),
            _ => case.expect.kind.as_deref(),
        };
        match kind {
            Some("abnormal_death" | "found_infant") => Role::CommunityOfficer,
            Some("trafficked_child_identity") => Role::CaseOfficer,
            _ => Role::HouseholdOfficer,
        }
    }

    async fn post(
        &self,
        role: Role,
        path: &str,
        body: Value,
        outcome: &mut Outcome,
    ) -> anyhow::Result<(u16, Value)> {
        outcome.commands += 1;
        let (status, body) = self.client.post(path, self.token(role)?, &body).await?;
        Ok((status.as_u16(), body))
    }

    /// Takes one application from submission to its end along the situation's path.
    ///
    /// # Errors
    /// Fails only when the server cannot be reached; unexpected answers become mismatches.
    pub async fn handle(
        &self,
        situation: &Situation,
        case: &Case,
        day: NaiveDate,
        index: u32,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        let role = Self::receiving_role(case, situation.path);
        let (name, id_number) = applicant(index);
        let request = case.request(&name, &id_number, day);
        let (status, body) = self
            .post(
                role,
                "/v1/applications",
                serde_json::to_value(&request)?,
                outcome,
            )
            .await?;
        let label = format!(
            "case {} ({:?}) at {} on {day}",
            case.number, situation.path, self.code
        );
        if status != 201 {
            outcome
                .mismatches
                .push(format!("{label}: submission answered {status}: {body}"));
            return Ok(());
        }
        if let Some(problem) = differs(&case.expect, &body["outcome"]) {
            outcome.mismatches.push(format!("{label}: {problem}"));
            return Ok(());
        }
        let id = body["application_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let base = format!("/v1/applications/{id}");
        let date = json!(day);
        let step = match situation.path {
            Path::Issue => self.issue(&base, role, &name, day, outcome).await?,
            Path::Refuse => {
                let explanation = situation.explanation.clone().unwrap_or_default();
                let referral = body["outcome"]["referral"].clone();
                let refusal =
                    json!({"explanation": explanation, "referral": referral, "date": date});
                let (status, body) = self
                    .post(role, &format!("{base}/refusal"), refusal, outcome)
                    .await?;
                (status == 200)
                    .then_some(())
                    .ok_or_else(|| format!("refusal answered {status}: {body}"))
            }
            Path::Override => {
                let kind = case.transition.kind.clone().unwrap_or_default();
                let justification = situation.justification.clone().unwrap_or_default();
                let change =
                    json!({"outcome": "issue", "kind": kind, "justification": justification});
                let (status, body) = self
                    .post(role, &format!("{base}/override"), change, outcome)
                    .await?;
                if status == 200 {
                    self.issue(&base, role, &name, day, outcome).await?
                } else {
                    Err(format!("override answered {status}: {body}"))
                }
            }
            Path::Withdraw => {
                let withdrawal = json!({"reason": "The applicant found the old ID card and no longer needs the certificate.", "date": date});
                let (status, body) = self
                    .post(role, &format!("{base}/withdrawal"), withdrawal, outcome)
                    .await?;
                (status == 200)
                    .then_some(())
                    .ok_or_else(|| format!("withdrawal answered {status}: {body}"))
            }
            Path::Referred => (body["status"] == "referred")
                .then_some(())
                .ok_or_else(|| format!("expected status referred, got {}", body["status"])),
        };
        if let Err(problem) = step {
            outcome.mismatches.push(format!("{label}: {problem}"));
        }
        Ok(())
    }

    /// Records evidence, signature and approval as the kind needs, then issues.
    async fn issue(
        &self,
        base: &str,
        role: Role,
        name: &str,
        day: NaiveDate,
        outcome: &mut Outcome,
    ) -> anyhow::Result<Result<(), String>> {
        let (status, state) = self.client.get(base, Some(self.token(role)?)).await?;
        if status != 200 {
            return Ok(Err(format!("reading the application answered {status}")));
        }
        let kind = state["outcome"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, policy) = self.client.get("/v1/policy", None).await?;
        if status != 200 {
            return Ok(Err(format!("reading the policy answered {status}")));
        }
        let Some(entry) = policy["kinds"]
            .as_array()
            .and_then(|kinds| kinds.iter().find(|entry| entry["code"] == kind.as_str()))
            .cloned()
        else {
            return Ok(Err(format!("kind {kind} is not in the policy")));
        };
        let source = entry["evidence_sources"][0].clone();
        let evidence = json!({"source": source, "reference": format!("{}-{}", self.code, day.format("%Y%m%d")), "result": "confirmed"});
        let mut steps = vec![(role, "evidence", evidence)];
        if entry["stub_signature"] == true {
            steps.push((
                role,
                "signature",
                json!({"signer": "applicant", "name": name, "phone": "13904310000"}),
            ));
        }
        if entry["leader_approval"] == true {
            steps.push((Role::StationLeader, "approval", json!({"date": day})));
        }
        steps.push((
            role,
            "issuance",
            json!({"seal": entry["seal"], "date": day}),
        ));
        let mut last = Value::Null;
        for (actor, step, body) in steps {
            let (status, answer) = self
                .post(actor, &format!("{base}/{step}"), body, outcome)
                .await?;
            if status != 200 {
                return Ok(Err(format!("{step} answered {status}: {answer}")));
            }
            last = answer;
        }
        let number = last["certificate_number"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if number.is_empty() {
            return Ok(Err("issuance returned no certificate number".into()));
        }
        outcome.public_checks += u64::from(self.check_public(&number).await?);
        Ok(Ok(()))
    }

    /// Asks the public authenticity check for `number` until the projection has it.
    async fn check_public(&self, number: &str) -> anyhow::Result<bool> {
        for _ in 0..100 {
            let (status, body) = self
                .client
                .get(&format!("/v1/certificates/{number}"), None)
                .await?;
            if status == 200 {
                return Ok(body["status"] == "valid");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(false)
    }

    /// Sends a submission the API must reject and checks its error and that nothing was recorded.
    ///
    /// # Errors
    /// Fails only when the server or database cannot be reached.
    pub async fn reject(
        &self,
        bad: &BadInput,
        case: &Case,
        day: NaiveDate,
        pool: &sqlx::PgPool,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        let (name, id_number) = applicant(9_999);
        let mut request = serde_json::to_value(case.request(&name, &id_number, day))?;
        for (path, value) in &bad.set {
            set_path(&mut request, path, serde_json::to_value(value)?);
        }
        let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await?;
        let role = Self::receiving_role(case, Path::Issue);
        let (status, body) = self
            .post(role, "/v1/applications", request, outcome)
            .await?;
        let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await?;
        let code = body["error"]["code"].as_str().unwrap_or_default();
        if status != bad.status || code != bad.code || before != after {
            outcome.mismatches.push(format!(
                "bad input {:?}: answered {status} {code}, events {before} -> {after}",
                bad.name
            ));
        } else {
            outcome.rejected += 1;
        }
        Ok(())
    }
}

fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut cursor = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cursor[part] = value;
            return;
        }
        cursor = &mut cursor[part];
    }
}

/// Compares a screening outcome with the expectation; returns the difference, if any.
pub fn differs(expected: &Expectation, outcome: &Value) -> Option<String> {
    let same = outcome["outcome"] == expected.outcome.as_str()
        && expected
            .kind
            .as_deref()
            .is_none_or(|kind| outcome["kind"] == kind)
        && expected
            .principle
            .as_deref()
            .is_none_or(|principle| outcome["principle"] == principle);
    (!same).then(|| format!("expected {expected:?}, screening gave {outcome}"))
}
