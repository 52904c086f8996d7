//! The hyper hello-world of B11 and B11m: the service every server runs, the request
//! the client sends, and how the client knows it has one whole response.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

/// The response body.
pub const BODY: &[u8] = b"Hello, World!";
/// The client's request (keep-alive).
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// The service: `200 OK` with [`BODY`].
pub async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// If `buf` starts with one whole response (head, then a body of `BODY.len()` bytes),
/// checks it, removes it and returns `true`; `false` if more bytes are needed.
pub fn take_response(buf: &mut Vec<u8>) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
        return false;
    };
    let total = end + BODY.len();
    if buf.len() < total {
        return false;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200 OK"), "bad response");
    assert_eq!(&buf[end..total], BODY);
    buf.drain(..total);
    true
}
