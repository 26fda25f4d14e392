//! A build's files over HTTP as a static host serves them: `/pricing` and
//! `/pricing/` answer `pricing/index.html`, a missing path answers the site's
//! 404 page with status 404, fingerprinted assets are cached for a year,
//! everything else revalidated by ETag.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::SiteServer;

/// The content type of a file by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "xml" => "application/xml; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "pdf" => "application/pdf",
        _ if path.ends_with("CNAME") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether a file name carries a content hash (`logo.0123456789.svg`).
fn fingerprinted(path: &str) -> bool {
    let parts: Vec<&str> = path.rsplit('.').collect();
    parts.len() >= 3 && parts[1].len() == 10 && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
}

pub async fn serve(State(s): State<Arc<SiteServer>>, uri: Uri, headers: HeaderMap) -> Response {
    let build = s.current();
    let path = uri.path();
    if path.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let rel = path.trim_start_matches('/');
    let candidates = [
        rel.to_string(),
        format!("{}/index.html", rel.trim_end_matches('/')),
        if rel.is_empty() {
            "index.html".to_string()
        } else {
            String::new()
        },
    ];
    let found = candidates
        .iter()
        .filter(|c| !c.is_empty() && !c.starts_with('/'))
        .find_map(|c| build.files.get(c).map(|b| (c.clone(), b)));
    let (file, bytes, status) = match found {
        Some((file, bytes)) => (file, bytes, StatusCode::OK),
        None => match build.files.get("404.html") {
            Some(b) => ("404.html".to_string(), b, StatusCode::NOT_FOUND),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..8]));
    let cache = if fingerprinted(&file) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if status == StatusCode::OK
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache.to_string()),
            ],
        )
            .into_response();
    }
    let mut body = bytes.clone();
    if s.live_reload && file.ends_with(".html") {
        let tag = b"<script src=\"/__funnel/reload.js\" defer></script>\n</body>";
        if let Some(at) = find(&body, b"</body>") {
            body.splice(at..at + 7, tag.iter().copied());
        }
    }
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    resp
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprinted_names_and_types() {
        assert!(fingerprinted("assets/site.0123456789.css"));
        assert!(!fingerprinted("index.html"));
        assert!(!fingerprinted("assets/logo.svg"));
        assert_eq!(content_type("a/b.svg"), "image/svg+xml");
        assert_eq!(content_type("x/index.html"), "text/html; charset=utf-8");
    }
}
