//! A plain HTTP/1.0 GET against a local process (the operator's admin port), or over a
//! connection opened elsewhere (into the real cluster's network namespace).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `(status, body)` of `GET path` on `addr` (2 s to connect, 5 s to read).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    http_get_on(s, addr, path)
}

/// `(status, body)` of `GET path` over the connected stream `s` to `addr` (5 s to read).
pub(crate) fn http_get_on(
    mut s: TcpStream,
    addr: SocketAddr,
    path: &str,
) -> Result<(u16, String), String> {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status code")?;
    Ok((code, body.to_owned()))
}
