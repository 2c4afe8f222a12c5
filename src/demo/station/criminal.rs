//! The demo's criminal-record work at one station: no-criminal-record applications and unit
//! verification visits, driven through the API.

use aggregates::policy::Role;
use chrono::{NaiveDate, NaiveTime};
use serde_json::{Value, json};

use super::{Outcome, StationDesk, applicant};
use crate::demo::scenario::{RecordCheckSituation, UnitVisitSituation};

impl StationDesk {
    /// Returns the codes of the mandatory record sources of the current policy.
    async fn mandatory_sources(&self) -> anyhow::Result<Vec<String>> {
        let (status, policy) = self.client.get("/v1/policy", None).await?;
        anyhow::ensure!(status == 200, "reading the policy returned {status}");
        let sources = policy["criminal_records"]["sources"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mandatory = sources
            .iter()
            .filter(|source| source["mandatory"] == true)
            .filter_map(|source| source["code"].as_str().map(String::from))
            .collect();
        Ok(mandatory)
    }

    /// Takes one no-criminal-record application from the form to issuance or refusal.
    ///
    /// # Errors
    /// Fails only when the server cannot be reached; unexpected responses become mismatches.
    pub async fn record_check(
        &self,
        situation: &RecordCheckSituation,
        day: NaiveDate,
        index: u32,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        let label = format!(
            "record check {} ({:?}) at {} on {day}",
            situation.purpose, situation.finding, self.code
        );
        let result = self
            .run_record_check(situation, day, index, outcome)
            .await?;
        match result {
            Ok(status) => {
                let key = format!("no-criminal-record {status}");
                *outcome.criminal_records.entry(key).or_default() += 1;
                if status != situation.expect {
                    outcome.mismatches.push(format!(
                        "{label}: expected {}, ended {status}",
                        situation.expect
                    ));
                }
            }
            Err(problem) => outcome.mismatches.push(format!("{label}: {problem}")),
        }
        Ok(())
    }

    async fn run_record_check(
        &self,
        situation: &RecordCheckSituation,
        day: NaiveDate,
        index: u32,
        outcome: &mut Outcome,
    ) -> anyhow::Result<Result<String, String>> {
        let (name, id_number) = applicant(index);
        let form = json!({
            "applicant": {"name": name, "id_number": id_number},
            "purpose": situation.purpose,
            "destination": situation.destination,
            "decision_date": day,
        });
        let handler = Role::HouseholdOfficer;
        let (status, body) = self
            .post(handler, "/v1/record-checks", form, outcome)
            .await?;
        if status != 201 {
            return Ok(Err(format!("submission returned {status}: {body}")));
        }
        let id = body["application_id"].as_str().unwrap_or_default();

        let base = format!("/v1/record-checks/{id}");
        let checked_at = day.and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default());
        let finding = serde_json::to_value(situation.finding)?;
        for (position, source) in self.mandatory_sources().await?.iter().enumerate() {
            let result = if position == 0 {
                finding.clone()
            } else {
                json!("no_record")
            };
            let check = json!({
                "source": source,
                "query_reference": format!("{}-{}-{position}", self.code, day.format("%Y%m%d")),
                "result": result,
                "checked_at": format!("{}Z", checked_at.format("%Y-%m-%dT%H:%M:%S")),
            });
            let (status, body) = self
                .post(handler, &format!("{base}/checks"), check, outcome)
                .await?;
            if status != 200 {
                return Ok(Err(format!("check of {source} returned {status}: {body}")));
            }
        }

        let leader = self.token(Role::StationLeader)?;
        outcome.commands += 1;
        let (status, results) = self
            .client
            .get(
                &format!("{base}/results?purpose=approval%20review"),
                Some(leader),
            )
            .await?;
        if status != 200 {
            return Ok(Err(format!("results read returned {status}: {results}")));
        }
        if results["record_found"] == true {
            let explanation = situation.explanation.clone().unwrap_or_default();
            let refusal = json!({"explanation": explanation, "date": day});
            let (status, body) = self
                .post(handler, &format!("{base}/refusal"), refusal, outcome)
                .await?;
            if status != 200 {
                return Ok(Err(format!("refusal returned {status}: {body}")));
            }
            return Ok(Ok(code(&body["status"])));
        }

        let steps = [
            (Role::StationLeader, "approval", json!({"date": day})),
            (
                handler,
                "issuance",
                json!({"seal": "official_seal", "date": day}),
            ),
        ];
        let mut last = Value::Null;
        for (actor, step, body) in steps {
            let (status, answer) = self
                .post(actor, &format!("{base}/{step}"), body, outcome)
                .await?;
            if status != 200 {
                return Ok(Err(format!("{step} returned {status}: {answer}")));
            }
            last = answer;
        }

        let number = last["certificate_number"].as_str().unwrap_or_default();
        let (status, check) = self
            .client
            .get(&format!("/v1/record-checks/certificates/{number}"), None)
            .await?;
        if status != 200 || check["status"] != "valid" {
            return Ok(Err(format!("public check returned {status}: {check}")));
        }
        outcome.public_checks += 1;
        Ok(Ok(code(&last["status"])))
    }

    /// Takes one unit verification visit from registration to its end.
    ///
    /// # Errors
    /// Fails only when the server cannot be reached; unexpected responses become mismatches.
    pub async fn unit_visit(
        &self,
        situation: &UnitVisitSituation,
        day: NaiveDate,
        index: u32,
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        let label = format!(
            "unit visit {} ({}) at {} on {day}",
            situation.unit.unit_type, situation.purpose, self.code
        );
        match self.run_unit_visit(situation, day, index, outcome).await? {
            Ok(status) => {
                let key = format!("unit visit {status}");
                *outcome.criminal_records.entry(key).or_default() += 1;
                if status != situation.expect {
                    outcome.mismatches.push(format!(
                        "{label}: expected {}, ended {status}",
                        situation.expect
                    ));
                }
            }
            Err(problem) => outcome.mismatches.push(format!("{label}: {problem}")),
        }
        Ok(())
    }

    async fn run_unit_visit(
        &self,
        situation: &UnitVisitSituation,
        day: NaiveDate,
        index: u32,
        outcome: &mut Outcome,
    ) -> anyhow::Result<Result<String, String>> {
        let (staff_name, staff_id) = applicant(index + 5_000);
        let (subject_name, subject_id) = applicant(index);
        let unit = &situation.unit;
        let visit = json!({
            "unit": {"name": unit.name, "unit_type": unit.unit_type, "level": unit.level},
            "staff": {"name": staff_name, "id_number": staff_id},
            "letter": {
                "number": format!("JS-{}-{index}", day.format("%Y%m%d")),
                "date": day,
                "issuing_unit": unit.name,
                "scan_sha256": format!("{index:064x}"),
            },
            "purpose": situation.purpose,
            "subject": {"name": subject_name, "id_number": subject_id},
            "visit_date": day,
        });
        let handler = Role::HouseholdOfficer;
        let (status, body) = self
            .post(handler, "/v1/unit-visits", visit, outcome)
            .await?;
        if status != 201 {
            return Ok(Err(format!("registration returned {status}: {body}")));
        }
        if body["status"] == "refused" {
            return Ok(Ok(code(&body["status"])));
        }

        let id = body["visit_id"].as_str().unwrap_or_default();
        let base = format!("/v1/unit-visits/{id}");
        let checked_at = day.and_time(NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default());
        let findings = json!({
            "sources": self.mandatory_sources().await?,
            "query_reference": format!("{}-{}-visit", self.code, day.format("%Y%m%d")),
            "result": "no_record",
            "disclosed": situation.disclosed,
            "checked_at": format!("{}Z", checked_at.format("%Y-%m-%dT%H:%M:%S")),
        });
        let (status, mut last) = self
            .post(handler, &format!("{base}/findings"), findings, outcome)
            .await?;
        if status != 200 {
            return Ok(Err(format!("findings returned {status}: {last}")));
        }

        if let Some(need) = &situation.certificate_need {
            let steps = [
                (
                    Role::StationLeader,
                    "certificate-approval",
                    json!({"need": need, "date": day}),
                ),
                (
                    handler,
                    "certificate",
                    json!({"seal": "official_seal", "date": day}),
                ),
            ];
            for (actor, step, body) in steps {
                let (status, answer) = self
                    .post(actor, &format!("{base}/{step}"), body, outcome)
                    .await?;
                if status != 200 {
                    return Ok(Err(format!("{step} returned {status}: {answer}")));
                }
                last = answer;
            }
        }
        Ok(Ok(code(&last["status"])))
    }
}

fn code(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
}
