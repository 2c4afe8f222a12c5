//! Bearer-token authentication: every command is attributed to an officer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aggregates::application::Actor;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::registry;

/// How long a resolved token is trusted before the database is asked again; a revoked token
/// stops working within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(30);

/// Resolved tokens, by token digest.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Actor)>>,
}

impl TokenCache {
    fn get(&self, digest: &str) -> Option<Actor> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (since, actor) = entries.get(digest)?;
        (since.elapsed() < TOKEN_CACHE_TTL).then(|| actor.clone())
    }

    fn put(&self, digest: String, actor: Actor) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, (since, _)| since.elapsed() < TOKEN_CACHE_TTL);
        entries.insert(digest, (Instant::now(), actor));
    }
}

/// The officer behind the request's bearer token.
pub struct Authenticated(pub Actor);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or(ApiError::Unauthorized(
                "missing Authorization header; send Authorization: Bearer <token>",
            ))?
            .to_str()
            .map_err(|_| {
                ApiError::Unauthorized(
                    "Authorization header is not visible ASCII text; send Authorization: Bearer <token>",
                )
            })?;
        // The scheme name is case-insensitive (RFC 9110 section 11.1).
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(ApiError::Unauthorized(
                "Authorization header is not a bearer token; send Authorization: Bearer <token>",
            ))?;
        let digest = registry::token_digest(token);
        if let Some(actor) = state.tokens.get(&digest) {
            return Ok(Authenticated(actor));
        }
        let actor = registry::officer_for_token(&state.pool, token)
            .await?
            .ok_or(ApiError::Unauthorized(
                "token is unknown or revoked; ask an operator for a new one (`zhengming token --officer <id>`)",
            ))?;
        state.tokens.put(digest, actor.clone());
        Ok(Authenticated(actor))
    }
}
