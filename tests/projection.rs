//! The applications projection: following the log, and a rebuild equal to the incremental
//! result.

mod common;

use common::{TestServer, kinship_request};
use serde_json::json;

type ViewRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn view(server: &TestServer) -> Vec<ViewRow> {
    sqlx::query_as(
        "SELECT application_id, status, outcome, kind, principle, certificate_number
           FROM application_view ORDER BY application_id",
    )
    .fetch_all(server.pool())
    .await
    .expect("view reads")
}

async fn caught_up(server: &TestServer) {
    projections::projector::catch_up(server.pool())
        .await
        .expect("projection applies");
    let lag = projections::projector::lag(server.pool())
        .await
        .expect("lag reads");
    assert_eq!(lag.behind, 0, "projection applies every committed event");
    assert_eq!(
        lag.checkpoint.global_position, lag.head,
        "projection reaches the head of the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_follows_and_rebuilds_equal() {
    let mut server = TestServer::start().await;
    let issued = server.submit("hh", kinship_request()).await;
    for (step, body) in [
        (
            "evidence",
            json!({"source": "household_archives", "reference": "A-1", "result": "confirmed"}),
        ),
        (
            "signature",
            json!({"signer": "applicant", "name": "张伟", "phone": "13904310000"}),
        ),
        (
            "issuance",
            json!({"seal": "household_seal", "date": "2026-11-03"}),
        ),
    ] {
        let (status, answer) = server
            .post("hh", &format!("/v1/applications/{issued}/{step}"), body)
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{step}: {answer}");
    }
    let mut same_register = kinship_request();
    same_register["circumstances"] = json!({"same_household_register": true});
    let refused = server.submit("hh", same_register).await;
    let refusal =
        json!({"explanation": "户口簿已载明亲属关系，请出示户口簿。", "referral": "出示户口簿"});
    server
        .post(
            "hh",
            &format!("/v1/applications/{refused}/refusal"),
            refusal,
        )
        .await;
    let withdrawn = server.submit("hh", kinship_request()).await;
    server
        .post(
            "hh",
            &format!("/v1/applications/{withdrawn}/withdrawal"),
            json!({"reason": "no longer needed"}),
        )
        .await;

    caught_up(&server).await;
    let incremental = view(&server).await;
    assert_eq!(incremental.len(), 3);
    let status_of = |id: &str| {
        incremental
            .iter()
            .find(|row| row.0 == id)
            .map(|row| row.1.clone())
    };
    assert_eq!(status_of(&issued).as_deref(), Some("issued"));
    assert_eq!(status_of(&refused).as_deref(), Some("refused"));
    assert_eq!(status_of(&withdrawn).as_deref(), Some("withdrawn"));
    let certificates: i64 = sqlx::query_scalar("SELECT count(*) FROM certificate_view")
        .fetch_one(server.pool())
        .await
        .expect("count");
    assert_eq!(certificates, 1);

    // The server's own projector would take some of the rebuilt batches.
    server.stop_server().await;
    let applied = projections::projector::rebuild(server.pool())
        .await
        .expect("rebuild runs");
    assert!(
        applied >= 9,
        "rebuild applies the whole log, applied {applied}"
    );
    assert_eq!(
        view(&server).await,
        incremental,
        "rebuild equals the incremental result"
    );

    let summary = projections::summary::summary(server.pool())
        .await
        .expect("summary reads");
    assert_eq!(summary.applications, 3);
    assert_eq!(summary.issued_per_kind.get("kinship"), Some(&1));
    assert_eq!(
        summary.refused_per_principle.get("legal_document"),
        Some(&1)
    );
    assert_eq!(summary.refusals_explained, 1);
    assert_eq!(summary.withdrawn, 1);
    server.stop().await;
}

/// Inserts a bare event of a type no projection reads, in `executor`'s transaction, and returns
/// its place in the commit order.
async fn insert_probe<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: &str,
) -> projections::projector::Checkpoint {
    let (transaction_id, global_position) = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('probe', $1, 1, 'Probe', '1', '{}', '{}') RETURNING transaction_id, global_position",
    )
    .bind(id)
    .fetch_one(executor)
    .await
    .expect("probe event is inserted");
    projections::projector::Checkpoint {
        transaction_id,
        global_position,
    }
}

/// Appends commit concurrently: an event committed while an older transaction that drew a
/// smaller position is still open waits for it, and then both are applied, none skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_commit_is_not_skipped() {
    let mut server = TestServer::start().await;
    // The projector of a running server would race the batches below.
    server.stop_server().await;
    let pool = server.pool().clone();
    if server.database_url.is_none() {
        // The embedded database serves one connection, so two transactions never overlap.
        assert_eq!(pool.options().get_max_connections(), 1);
        server.stop().await;
        return;
    }
    projections::projector::catch_up(&pool)
        .await
        .expect("projection applies");
    let before = projections::projector::lag(&pool).await.expect("lag reads");

    let mut older = pool.begin().await.expect("transaction begins");
    let first = insert_probe(&mut *older, "older-1").await;
    let newer = insert_probe(&pool, "newer").await;
    let second = insert_probe(&mut *older, "older-2").await;
    assert!(first.global_position < newer.global_position);
    assert!(newer.global_position < second.global_position);
    assert!(first.transaction_id < newer.transaction_id);

    projections::projector::apply_next_batch(&pool)
        .await
        .expect("batch runs");
    let waiting = projections::projector::lag(&pool).await.expect("lag reads");
    assert_eq!(
        waiting.checkpoint, before.checkpoint,
        "the newer commit is not applied while the older transaction is open"
    );

    older.commit().await.expect("older transaction commits");
    let applied = projections::projector::catch_up(&pool)
        .await
        .expect("projection applies");
    assert_eq!(applied, 3, "all three events are applied");
    let after = projections::projector::lag(&pool).await.expect("lag reads");
    assert_eq!(after.behind, 0);
    // The older transaction's events come first in commit order, so the newer event is last.
    assert_eq!(after.checkpoint, newer);
    assert!(second < newer);
    server.stop().await;
}

/// A write transaction open in another database on the server does not hold the projection
/// back: only the transactions of its own database can write its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_database_transaction_does_not_hold_back() {
    let mut server = TestServer::start().await;
    server.stop_server().await;
    let pool = server.pool().clone();
    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        // The embedded database is the only one on its server.
        assert!(server.database_url.is_none());
        server.stop().await;
        return;
    };
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("server database opens");
    let mut elsewhere = admin.begin().await.expect("transaction begins");
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *elsewhere)
        .await
        .expect("the other transaction takes an id");

    let probe = insert_probe(&pool, "after-the-other").await;
    // One batch, which would read nothing if the other transaction counted.
    projections::projector::apply_next_batch(&pool)
        .await
        .expect("batch runs");
    let lag = projections::projector::lag(&pool).await.expect("lag reads");
    assert_eq!(
        lag.checkpoint, probe,
        "the probe is applied while the other is open"
    );

    elsewhere.rollback().await.expect("other transaction ends");
    admin.close().await;
    server.stop().await;
}
