//! The body of a 200 to a GET (GET Conversation, the lists), read up to a bound so a huge or
//! endless answer cannot take the service's memory.

use super::error::GladlyError;

/// Most bytes a GET answer may have (a list of every agent of a large organization is a few
/// MiB); a longer one is refused as not Gladly's documented answer rather than held in memory.
pub(super) const MAX_GET_BODY: usize = 32 * 1024 * 1024;

/// The body of a 200 to a GET, read up to [`MAX_GET_BODY`].
pub(super) async fn bounded_body(
    mut resp: reqwest::Response,
    url: &reqwest::Url,
    transport: impl Fn(reqwest::Error) -> GladlyError,
) -> Result<bytes::Bytes, GladlyError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_GET_BODY as u64)
    {
        return Err(too_long(url));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(&transport)? {
        if body.len() + chunk.len() > MAX_GET_BODY {
            return Err(too_long(url));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn too_long(url: &reqwest::Url) -> GladlyError {
    GladlyError::TooLong {
        url: url.to_string(),
        limit: MAX_GET_BODY,
    }
}
