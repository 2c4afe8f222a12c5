//! Stations, officers and API tokens.

use aggregates::application::Actor;
use aggregates::policy::Role;
use anyhow::Context;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A city with its counties and their stations, as set up by an operator.
#[derive(Clone, Debug, Deserialize)]
pub struct City {
    pub code: String,
    pub name: String,
    pub counties: Vec<County>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct County {
    pub code: String,
    pub name: String,
    pub stations: Vec<Station>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Station {
    pub code: String,
    pub name: String,
    pub officers: Vec<Officer>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Officer {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Records a city, its counties, stations and officers; records already present are kept.
///
/// # Errors
/// Fails when the database rejects a row.
pub async fn add_city(pool: &PgPool, city: &City) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("INSERT INTO cities (code, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&city.code)
        .bind(&city.name)
        .execute(&mut *tx)
        .await?;
    for county in &city.counties {
        sqlx::query("INSERT INTO counties (code, city_code, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&county.code)
            .bind(&city.code)
            .bind(&county.name)
            .execute(&mut *tx)
            .await?;
        for station in &county.stations {
            sqlx::query("INSERT INTO stations (code, county_code, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(&station.code)
                .bind(&county.code)
                .bind(&station.name)
                .execute(&mut *tx)
                .await?;
            for officer in &station.officers {
                add_officer_in(&mut tx, officer, &station.code).await?;
            }
        }
    }
    tx.commit().await.context("recording the city failed")
}

async fn add_officer_in(
    tx: &mut sqlx::PgConnection,
    officer: &Officer,
    station: &str,
) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO officers (id, name, role, station_code) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(&officer.id)
        .bind(&officer.name)
        .bind(officer.role.code())
        .bind(station)
        .execute(tx)
        .await?;
    Ok(())
}

/// Records one officer at an existing station.
///
/// # Errors
/// Fails when the station does not exist or the officer id is taken.
pub async fn add_officer(pool: &PgPool, officer: &Officer, station: &str) -> anyhow::Result<()> {
    let exists: Option<String> = sqlx::query_scalar("SELECT code FROM stations WHERE code = $1")
        .bind(station)
        .fetch_optional(pool)
        .await?;
    anyhow::ensure!(
        exists.is_some(),
        "station {station} does not exist; add it first"
    );
    let inserted = sqlx::query("INSERT INTO officers (id, name, role, station_code) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
        .bind(&officer.id)
        .bind(&officer.name)
        .bind(officer.role.code())
        .bind(station)
        .execute(pool)
        .await?;
    anyhow::ensure!(
        inserted.rows_affected() == 1,
        "officer id {} is already taken",
        officer.id
    );
    Ok(())
}

/// Records a city, county and station given by code alone, for a first setup from the CLI.
///
/// # Errors
/// Fails when the database rejects a row.
pub async fn add_station(
    pool: &PgPool,
    city: &str,
    county: &str,
    station: &str,
    name: &str,
) -> anyhow::Result<()> {
    let county_city: Option<String> =
        sqlx::query_scalar("SELECT city_code FROM counties WHERE code = $1")
            .bind(county)
            .fetch_optional(pool)
            .await?;
    if let Some(recorded) = county_city {
        anyhow::ensure!(
            recorded == city,
            "county {county} belongs to city {recorded}, not {city}; give its own city"
        );
    }
    let taken: Option<String> = sqlx::query_scalar("SELECT name FROM stations WHERE code = $1")
        .bind(station)
        .fetch_optional(pool)
        .await?;
    if let Some(taken) = taken {
        anyhow::bail!("station code {station} is already taken by {taken}");
    }
    let city = City {
        code: city.to_string(),
        name: city.to_string(),
        counties: vec![County {
            code: county.to_string(),
            name: county.to_string(),
            stations: vec![Station {
                code: station.to_string(),
                name: name.to_string(),
                officers: Vec::new(),
            }],
        }],
    };
    add_city(pool, &city).await
}

/// Returns the SHA-256 of a token in lowercase hex, the form stored in the database.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a bearer token bound to `officer_id` and returns it; only its digest is stored.
///
/// # Errors
/// Fails when the officer does not exist.
pub async fn create_token(pool: &PgPool, officer_id: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("zm_{}", hex::encode(bytes));
    let inserted = sqlx::query("INSERT INTO api_tokens (token_sha256, officer_id) SELECT $1, id FROM officers WHERE id = $2")
        .bind(token_digest(&token))
        .bind(officer_id)
        .execute(pool)
        .await?;
    anyhow::ensure!(
        inserted.rows_affected() == 1,
        "officer {officer_id} does not exist; add the officer first"
    );
    Ok(token)
}

/// Revokes every token of `officer_id` and returns how many were in use. A running server
/// stops accepting them within its token cache's lifetime (30 seconds).
///
/// # Errors
/// Fails when the officer does not exist.
pub async fn revoke_tokens(pool: &PgPool, officer_id: &str) -> anyhow::Result<u64> {
    let known: Option<String> = sqlx::query_scalar("SELECT id FROM officers WHERE id = $1")
        .bind(officer_id)
        .fetch_optional(pool)
        .await?;
    anyhow::ensure!(known.is_some(), "officer {officer_id} does not exist");
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE officer_id = $1 AND revoked_at IS NULL",
    )
    .bind(officer_id)
    .execute(pool)
    .await?;
    Ok(revoked.rows_affected())
}

/// Returns the officer a token belongs to, or `None` for an unknown or revoked token.
///
/// # Errors
/// Fails when the database cannot be read.
pub async fn officer_for_token(pool: &PgPool, token: &str) -> sqlx::Result<Option<Actor>> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT o.id, o.role, o.station_code FROM api_tokens t JOIN officers o ON o.id = t.officer_id
          WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL",
    )
    .bind(token_digest(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(officer_id, role, station)| {
        let role = Role::from_code(&role)?;
        Some(Actor {
            officer_id,
            role,
            station,
        })
    }))
}
