//! Gladly's Events API: `GET /api/v1/events?startAt=…&endAt=…&entities=…`, JSON lines of the
//! events recorded in `[startAt, endAt)` within the last 24 hours, ascending by `timestamp`.
//! Paced by the client's general per-second pacer and retried like GET Conversation; a
//! redirect is never followed (it would carry the credentials elsewhere) and the body is
//! bounded (`get_body::MAX_GET_BODY`, 32 MiB).

use chrono::{DateTime, SecondsFormat, Utc};

use super::client::{Client, GetAnswer};
use super::error::GladlyError;
use crate::report::EventEntity;

/// The Events API's path.
pub const EVENTS_PATH: &str = "/api/v1/events";

impl Client {
    /// GETs the events of `entities` recorded in `[start, end)`: the body, JSON lines. Paced
    /// under `gladly.requests_per_second`, retried on 429/5xx/timeouts (honouring
    /// `Retry-After`). A 404 or a redirect is an error (the organization host is wrong, or
    /// the answer would come from elsewhere); so is a 400 (a `start` older than the API's 24
    /// hours, say).
    pub async fn events(
        &self,
        entities: &[EventEntity],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<bytes::Bytes, GladlyError> {
        let url = events_url(self.base(), entities, start, end)?;
        match self.get("GET events", &url).await? {
            GetAnswer::Ok(body) => Ok(body),
            GetAnswer::NotFound => Err(GladlyError::Decode {
                url: url.to_string(),
                reason: "404: no Events API here (is gladly.host the organization's?)".into(),
            }),
            GetAnswer::Moved { location } => Err(GladlyError::Moved {
                status: 301,
                url: url.to_string(),
                detail: format!(
                    "to {}; events are never fetched elsewhere with the API credentials",
                    location.as_deref().unwrap_or("(no Location)")
                ),
            }),
        }
    }
}

/// The URL of the events of `entities` in `[start, end)`: UTC instants with milliseconds,
/// `entities` repeated (the form Gladly documents).
pub fn events_url(
    base: &str,
    entities: &[EventEntity],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<reqwest::Url, GladlyError> {
    let mut url =
        reqwest::Url::parse(base).map_err(|e| GladlyError::Setup(format!("gladly.host: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| GladlyError::Setup("gladly.host cannot take a path".into()))?
        .pop_if_empty()
        .extend(EVENTS_PATH.trim_start_matches('/').split('/'));
    {
        let mut q = url.query_pairs_mut();
        q.append_pair(
            "startAt",
            &start.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        q.append_pair("endAt", &end.to_rfc3339_opts(SecondsFormat::Millis, true));
        for e in entities {
            q.append_pair("entities", e.name());
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_repeats_entities_and_sends_utc_milliseconds() {
        let start = "2024-03-11T10:00:00Z".parse().unwrap();
        let end = "2024-03-11T10:15:00.5Z".parse().unwrap();
        let url = events_url(
            "https://acme.gladly.com",
            &[EventEntity::Contact, EventEntity::AgentStatus],
            start,
            end,
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://acme.gladly.com/api/v1/events?startAt=2024-03-11T10%3A00%3A00.000Z&endAt=2024-03-11T10%3A15%3A00.500Z&entities=CONTACT&entities=AGENT_STATUS"
        );
    }
}
