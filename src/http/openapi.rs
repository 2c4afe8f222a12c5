//! The OpenAPI document served at `/v1/openapi.json`.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::exchange::{self, requests};
use super::supervision::{self, compliance, overrides, trail};
use super::{
    applications, error, inspections, ledger, problem_reports, record_check_notices, record_checks,
    record_reads, records, training, unit_visits,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "zhengming certificate ledger", description = "Police-station certificates: submission, screening, refusal with explanation, evidence, signature, approval, issuance; every step a hash-chained event."),
    paths(
        records::health, records::policy,
        applications::submit, applications::show, applications::override_screening, applications::refuse,
        applications::record_evidence, applications::sign_stub, applications::approve, applications::issue,
        applications::withdraw, records::history, records::refusal_notice, records::check_certificate,
        record_checks::submit, record_checks::show, record_checks::check_source, record_checks::approve,
        record_checks::issue, record_checks::refuse, record_checks::file_objection,
        record_checks::extend_objection, record_checks::recheck, record_checks::answer_objection,
        record_checks::results, record_check_notices::refusal_notice,
        record_check_notices::check_certificate, record_check_notices::reads,
        unit_visits::register, unit_visits::show, unit_visits::record_findings,
        unit_visits::approve_certificate, unit_visits::issue_certificate, unit_visits::results,
        unit_visits::reads, record_reads::read_log,
        ledger::latest_checkpoint, ledger::receipt, ledger::consistency,
        exchange::register_department, exchange::register_agreement, exchange::show_agreement,
        exchange::designate, exchange::show_unit, requests::receive, requests::show, requests::verify,
        requests::results, requests::deliver_feedback, requests::prepare_handover,
        requests::acknowledge_handover, requests::file,
        supervision::findings, supervision::lag, supervision::replay, compliance::compliance,
        trail::trail, overrides::overrides,
        inspections::open, inspections::list, inspections::show, inspections::record_finding,
        inspections::publish_notice, inspections::notices, inspections::require_rectification,
        inspections::report_rectification, inspections::verify_rectification, inspections::close,
        training::record, training::coverage,
        problem_reports::report, problem_reports::list, problem_reports::show,
        problem_reports::acknowledge, problem_reports::answer,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
