//! The list endpoints behind the dimension topics: `GET /api/v1/agents`, `/inboxes`, `/teams`
//! and `/topics`. Each answers a JSON array of objects with an `id`, in one page (Gladly
//! documents no paging). Paced by the client's general per-second pacer and retried like
//! GET Conversation; a redirect is never followed (it would carry the credentials elsewhere)
//! and the body is bounded (`get_body::MAX_GET_BODY`, 32 MiB).

use super::client::{Client, GetAnswer};
use super::error::GladlyError;
use crate::report::{DimensionList, ListItem};

impl Client {
    /// GETs `list`: paced under `gladly.requests_per_second`, retried on 429/5xx/timeouts
    /// (honouring `Retry-After`). A 404 or a redirect is an error (the organization host is
    /// wrong, or the answer would come from elsewhere), and so is a body that is not a JSON
    /// array of objects.
    pub async fn list(&self, list: DimensionList) -> Result<Vec<ListItem>, GladlyError> {
        let mut url = reqwest::Url::parse(self.base())
            .map_err(|e| GladlyError::Setup(format!("gladly.host: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| GladlyError::Setup("gladly.host cannot take a path".into()))?
            .pop_if_empty()
            .extend(list.path().trim_start_matches('/').split('/'));
        let what = format!("GET {list}");
        match self.get(&what, &url).await? {
            GetAnswer::Ok(body) => decode(&url, &body),
            GetAnswer::NotFound => Err(GladlyError::Decode {
                url: url.to_string(),
                reason: "404: the list does not exist here (is gladly.host the organization's?)"
                    .into(),
            }),
            GetAnswer::Moved { location } => Err(GladlyError::Moved {
                status: 301,
                url: url.to_string(),
                detail: format!(
                    "to {}; a list is never followed elsewhere with the API credentials",
                    location.as_deref().unwrap_or("(no Location)")
                ),
            }),
        }
    }
}

/// The items of a list body: a JSON array of objects.
fn decode(url: &reqwest::Url, body: &[u8]) -> Result<Vec<ListItem>, GladlyError> {
    serde_json::from_slice::<Vec<ListItem>>(body).map_err(|e| GladlyError::Decode {
        url: url.to_string(),
        reason: format!(
            "{e}; body starts {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake Gladly: agents (200), inboxes (301 elsewhere), teams (not JSON), topics (404).
    async fn fake() -> Client {
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::get;
        let app = axum::Router::new()
            .route(
                "/api/v1/agents",
                get(|| async {
                    axum::Json(serde_json::json!([
                        {"id": "a1", "name": "Amy", "emailAddress": "amy@x.com"}
                    ]))
                }),
            )
            .route(
                "/api/v1/inboxes",
                get(|| async {
                    (
                        StatusCode::MOVED_PERMANENTLY,
                        [(header::LOCATION, "http://elsewhere.example/api/v1/inboxes")],
                    )
                        .into_response()
                }),
            )
            .route("/api/v1/teams", get(|| async { "<html>" }));
        super::super::client_for(app).await
    }

    #[tokio::test]
    async fn a_list_is_read_and_redirects_404s_and_bad_bodies_are_refused() {
        let client = fake().await;
        let agents = client.list(DimensionList::Agents).await.unwrap();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0]["emailAddress"], "amy@x.com");
        let err = client.list(DimensionList::Inboxes).await.unwrap_err();
        assert!(matches!(err, GladlyError::Moved { .. }), "{err}");
        assert!(!err.is_retryable());
        let err = client.list(DimensionList::Teams).await.unwrap_err();
        assert!(err.to_string().contains("<html>"), "{err}");
        let err = client.list(DimensionList::Topics).await.unwrap_err();
        assert!(err.to_string().contains("404"), "{err}");
    }
}
