//! A minimal OTLP/HTTP sink for the tracing-export test: it answers 200 to every POST and
//! records `path content-type length` of each.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;

/// A minimal OTLP/HTTP sink: answers 200 to every POST and records `path content-type`.
pub fn otlp_sink() -> (SocketAddr, std::sync::Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP sink");
    let addr = listener.local_addr().expect("address");
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let record = std::sync::Arc::clone(&record);
            std::thread::spawn(move || serve_otlp(conn, &record));
        }
    });
    (addr, seen)
}

fn serve_otlp(mut conn: TcpStream, record: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // One request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                })
                .map(|(_, v)| v.trim().to_owned())
        };
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let ctype = header("content-type").unwrap_or_default();
        record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{path} {ctype} {len}"));
        buf.drain(..head_end + len);
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}
