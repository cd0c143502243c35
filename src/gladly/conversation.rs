//! `GET /api/v1/conversations/{id}`: where a conversation is now (inbox, status, assignee,
//! topics). Paced by the client's general per-second pacer, retried like every call; a 404
//! means the conversation was deleted, a 301 (merged or moved) is followed once.

use super::client::{Client, GetAnswer};
use super::error::GladlyError;
use crate::report::Conversation;

/// Path of the conversations resource; a conversation is `<path>/<id>`.
pub const CONVERSATIONS_PATH: &str = "/api/v1/conversations";

/// What GET Conversation found.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationLookup {
    /// The conversation now; after a 301 its `id` is the one it moved to.
    Found(Box<Conversation>),
    /// 404: it does not exist (any more), also when a move led to a deleted one.
    Deleted,
}

impl Client {
    /// Fetches conversation `id`: paced under `gladly.requests_per_second`, retried on
    /// 429/5xx/timeouts/resets (honouring `Retry-After`). A 301/308 to another conversation
    /// of the same host is followed once; a second move or one without a usable `Location`
    /// is [`GladlyError::Moved`].
    pub async fn conversation(&self, id: &str) -> Result<ConversationLookup, GladlyError> {
        let url = self.conversation_url(id)?;
        let what = "GET conversation";
        let answer = match self.get(what, &url).await? {
            GetAnswer::Moved { location } => {
                let to = self.moved_to(&url, location.as_deref())?;
                match self.get(what, &to).await? {
                    GetAnswer::Moved { .. } => {
                        return Err(GladlyError::Moved {
                            status: 301,
                            url: to.to_string(),
                            detail: format!(
                                "{url} moved here and this moved again; moves are followed once"
                            ),
                        })
                    }
                    other => (other, to),
                }
            }
            other => (other, url),
        };
        match answer {
            (GetAnswer::Ok(body), url) => serde_json::from_slice::<Conversation>(&body)
                .map(|c| ConversationLookup::Found(Box::new(c)))
                .map_err(|e| GladlyError::Decode {
                    url: url.to_string(),
                    reason: format!(
                        "{e}; body starts {:?}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ),
                }),
            (GetAnswer::NotFound, _) => Ok(ConversationLookup::Deleted),
            (GetAnswer::Moved { .. }, _) => unreachable!("handled above"),
        }
    }

    fn conversation_url(&self, id: &str) -> Result<reqwest::Url, GladlyError> {
        let mut url = reqwest::Url::parse(self.base())
            .map_err(|e| GladlyError::Setup(format!("gladly.host: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| GladlyError::Setup("gladly.host cannot take a path".into()))?
            .pop_if_empty()
            .extend(CONVERSATIONS_PATH.trim_start_matches('/').split('/'))
            .push(id);
        Ok(url)
    }

    /// Where a 301 from `from` points: a conversation URL on the same origin (credentials are
    /// never sent elsewhere).
    fn moved_to(
        &self,
        from: &reqwest::Url,
        location: Option<&str>,
    ) -> Result<reqwest::Url, GladlyError> {
        let moved = |detail: String| GladlyError::Moved {
            status: 301,
            url: from.to_string(),
            detail,
        };
        let location = location.ok_or_else(|| moved("no Location header".into()))?;
        let to = from
            .join(location)
            .map_err(|e| moved(format!("Location {location:?} is not a URL: {e}")))?;
        if to.origin() != from.origin() {
            return Err(moved(format!(
                "Location {to} is on another host; not following it with the API credentials"
            )));
        }
        let prefix = format!("{CONVERSATIONS_PATH}/");
        let new_id = to
            .path()
            .strip_prefix(&prefix)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| moved(format!("Location {to} is not a conversation")))?;
        if to == *from {
            return Err(moved(
                "Location points back at the same conversation".into(),
            ));
        }
        // rebuild from the id so the URL has the canonical form
        let decoded = percent_decode(new_id);
        self.conversation_url(&decoded)
    }
}

/// Decodes `%XX` escapes of a path segment (ids are URL-safe, but be exact).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake Gladly whose conversations answer by id: `a`→`b`→`c` (two moves), `n` (301 without
    /// Location), `x` (301 to another host), `g` (200, not JSON), `d`→`gone` (404), `c` (found).
    async fn fake() -> Client {
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        async fn answer(
            axum::extract::Path(id): axum::extract::Path<String>,
        ) -> axum::response::Response {
            let moved = |to: &str| {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, to.to_string())],
                    "",
                )
                    .into_response()
            };
            match id.as_str() {
                "a" => moved("/api/v1/conversations/b"),
                "b" => moved("/api/v1/conversations/c"),
                "d" => moved("gone"),
                "n" => StatusCode::MOVED_PERMANENTLY.into_response(),
                "x" => moved("http://elsewhere.example/api/v1/conversations/c"),
                "g" => "<html>".into_response(),
                "c" => axum::Json(serde_json::json!({"id": "c", "status": "OPEN"})).into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
        let app =
            axum::Router::new().route("/api/v1/conversations/{id}", axum::routing::get(answer));
        super::super::client_for(app).await
    }

    #[tokio::test]
    async fn a_move_is_followed_once_and_only_on_the_same_host() {
        let client = fake().await;
        let found = client.conversation("b").await.unwrap();
        assert!(matches!(found, ConversationLookup::Found(c) if c.id == "c"));
        assert_eq!(
            client.conversation("d").await.unwrap(),
            ConversationLookup::Deleted
        );
        assert_eq!(
            client.conversation("zz").await.unwrap(),
            ConversationLookup::Deleted
        );
        for (id, says) in [
            ("a", "moved again"),
            ("n", "no Location"),
            ("x", "another host"),
        ] {
            let err = client.conversation(id).await.unwrap_err();
            assert!(
                matches!(err, GladlyError::Moved { .. }) && !err.is_retryable(),
                "{err}"
            );
            assert!(err.to_string().contains(says), "{err}");
        }
        let err = client.conversation("g").await.unwrap_err();
        assert!(matches!(err, GladlyError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("<html>"), "{err}");
    }

    #[test]
    fn percent_escapes_are_decoded() {
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("abc"), "abc");
        assert_eq!(percent_decode("50%"), "50%");
    }
}
