//! A small JSON client for the API.

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// A client bound to a server's base URL.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: String) -> Self {
        ApiClient {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// Sends a POST with a bearer token and returns the status and the JSON body.
    ///
    /// # Errors
    /// Fails when the server cannot be reached or answers with something other than JSON.
    pub async fn post(
        &self,
        path: &str,
        token: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    /// Sends a POST of a CSV body with query parameters and returns the status and the JSON
    /// body.
    ///
    /// # Errors
    /// Fails when the server cannot be reached or answers with something other than JSON.
    pub async fn post_csv(
        &self,
        path: &str,
        token: &str,
        query: &[(&str, String)],
        csv: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .query(query)
            .body(csv.to_string())
            .send()
            .await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }

    /// Sends a GET, with a bearer token where one is given.
    ///
    /// # Errors
    /// Fails when the server cannot be reached or answers with something other than JSON.
    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await?))
    }
}
