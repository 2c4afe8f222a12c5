//! Ledger endpoints: the newest signed checkpoint, an application's receipt with inclusion
//! proofs, and consistency proofs between two checkpoints.

use aggregates::ledger::Checkpoint;
use aggregates::merkle;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::applications::load_for;
use super::auth::Authenticated;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::{ApiQuery, Path};
use crate::ledger::bundle::{hex_list, leaf_hashes};
use crate::ledger::records;

/// A signed checkpoint of the ledger.
#[derive(Serialize, ToSchema)]
pub struct CheckpointResponse {
    pub tree_size: u64,
    pub root: String,
    pub signed_at: String,
    pub key_id: String,
    pub signature: String,
}

impl From<Checkpoint> for CheckpointResponse {
    fn from(checkpoint: Checkpoint) -> Self {
        CheckpointResponse {
            tree_size: checkpoint.tree_size,
            root: checkpoint.root,
            signed_at: checkpoint.signed_at,
            key_id: checkpoint.key_id,
            signature: checkpoint.signature,
        }
    }
}

/// One event's place in the ledger.
#[derive(Serialize, ToSchema)]
pub struct EventReceipt {
    pub sequence: i64,
    pub global_position: i64,
    pub hash: Option<String>,
    /// Index of the event's leaf; absent until the sealer has appended it.
    pub leaf_index: Option<i64>,
    /// Hashes from the leaf up to the root of `checkpoint`; absent until a checkpoint covers
    /// the leaf.
    pub inclusion_proof: Option<Vec<String>>,
}

/// The receipt of an application: each event's leaf and its proof against one checkpoint.
#[derive(Serialize, ToSchema)]
pub struct ReceiptResponse {
    pub application_id: String,
    /// The newest checkpoint, which every inclusion proof leads to; absent before the first.
    pub checkpoint: Option<CheckpointResponse>,
    pub events: Vec<EventReceipt>,
}

#[utoipa::path(get, path = "/v1/ledger/checkpoints/latest", responses((status = 200, body = CheckpointResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn latest_checkpoint(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
) -> ApiResult<Json<CheckpointResponse>> {
    let checkpoints = records::database_checkpoints(&state.pool).await?;
    let newest = checkpoints
        .into_iter()
        .last()
        .ok_or_else(|| ApiError::NotFound {
            code: "no_checkpoint",
            message: "no checkpoint has been signed yet; retry after the next sealing round".into(),
        })?;
    Ok(Json(newest.into()))
}

#[utoipa::path(get, path = "/v1/ledger/applications/{id}/receipt", responses((status = 200, body = ReceiptResponse), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn receipt(
    State(state): State<AppState>,
    Authenticated(actor): Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<ReceiptResponse>> {
    load_for(&state, &actor, &id).await?;
    let rows: Vec<(i64, i64, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT e.sequence, e.global_position, e.metadata->>'hash', l.leaf_index
           FROM events e LEFT JOIN ledger_leaves l ON l.global_position = e.global_position
          WHERE e.aggregate_type = 'application' AND e.aggregate_id = $1 ORDER BY e.sequence",
    )
    .bind(&id)
    .fetch_all(&state.pool)
    .await?;
    let checkpoint = records::database_checkpoints(&state.pool)
        .await?
        .into_iter()
        .last();
    let size = checkpoint
        .as_ref()
        .map_or(0, |checkpoint| checkpoint.tree_size);
    let covered = rows
        .iter()
        .any(|(_, _, _, leaf)| leaf.is_some_and(|leaf| (leaf as u64) < size));
    let leaves = if covered {
        leaf_hashes(&state.pool, size).await?
    } else {
        Vec::new()
    };
    let events = rows
        .into_iter()
        .map(|(sequence, global_position, hash, leaf_index)| {
            let inclusion_proof = leaf_index
                .filter(|leaf| (*leaf as u64) < size)
                .map(|leaf| hex_list(&merkle::inclusion_proof(&leaves, leaf as usize)));
            EventReceipt {
                sequence,
                global_position,
                hash,
                leaf_index,
                inclusion_proof,
            }
        })
        .collect();
    Ok(Json(ReceiptResponse {
        application_id: id,
        checkpoint: checkpoint.map(Into::into),
        events,
    }))
}

/// The two checkpoints a consistency proof connects, by tree size.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// Tree size of the older checkpoint.
    #[param(required = true, value_type = u64)]
    pub old: Option<String>,
    /// Tree size of the newer checkpoint.
    #[param(required = true, value_type = u64)]
    pub new: Option<String>,
}

/// Proof that the older checkpoint's tree is a prefix of the newer one's.
#[derive(Serialize, ToSchema)]
pub struct ConsistencyResponse {
    pub old: CheckpointResponse,
    pub new: CheckpointResponse,
    pub proof: Vec<String>,
}

fn tree_size_param(value: Option<&str>, field: &str) -> ApiResult<u64> {
    let invalid = |message: String| ApiError::BadRequest {
        status: axum::http::StatusCode::BAD_REQUEST,
        code: "invalid_field",
        field: Some(field.to_string()),
        message,
    };
    let text = value.ok_or_else(|| {
        invalid(format!(
            "query parameter {field} is missing; give a checkpoint's tree size"
        ))
    })?;
    text.parse().map_err(|_| {
        invalid(format!(
            "query parameter {field} must be a tree size (a whole number); found {text:?}"
        ))
    })
}

#[utoipa::path(get, path = "/v1/ledger/consistency", params(ConsistencyQuery), responses((status = 200, body = ConsistencyResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    Authenticated(_actor): Authenticated,
    ApiQuery(query): ApiQuery<ConsistencyQuery>,
) -> ApiResult<Json<ConsistencyResponse>> {
    let old_size = tree_size_param(query.old.as_deref(), "old")?;
    let new_size = tree_size_param(query.new.as_deref(), "new")?;
    if old_size > new_size {
        return Err(ApiError::BadRequest {
            status: axum::http::StatusCode::BAD_REQUEST,
            code: "invalid_field",
            field: Some("old".into()),
            message: format!("old ({old_size}) must not exceed new ({new_size})"),
        });
    }
    let checkpoints = records::database_checkpoints(&state.pool).await?;
    let find = |size: u64, field: &str| {
        checkpoints
            .iter()
            .find(|checkpoint| checkpoint.tree_size == size)
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                code: "checkpoint_not_found",
                message: format!("no checkpoint of tree size {size} ({field}); GET /v1/ledger/checkpoints/latest shows the newest"),
            })
    };
    let old = find(old_size, "old")?;
    let new = find(new_size, "new")?;
    let leaves = leaf_hashes(&state.pool, new_size).await?;
    let proof = hex_list(&merkle::consistency_proof(&leaves, old_size as usize));
    Ok(Json(ConsistencyResponse {
        old: old.into(),
        new: new.into(),
        proof,
    }))
}
