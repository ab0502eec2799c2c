//! The messages of the common failures, end to end through the real binary: each names what
//! failed, the file, context or server involved, and the flag that fixes it (issue 26, item 6).
//! `audit --cluster` exits 2 on all of them; `run` exits 1 on a kubeconfig it cannot use and
//! keeps running (retrying, with one log sentence) on certificate files it cannot load.
//!
//! The API servers here are loopback sockets the tests own: a closed port, a listener that
//! accepts and never answers, and a small HTTP server that serves empty lists and no
//! ProductionPolicy CRD. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest any one command may take before the test fails.
const LIMIT: Duration = Duration::from_secs(60);

fn program() -> &'static str {
    env!("CARGO_BIN_EXE_prodready")
}

/// The binary, with no kubeconfig of this machine's user in reach and no log filter from
/// outside.
fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program());
    c.args(args)
        .env("HOME", home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .stdin(Stdio::null());
    c
}

/// Runs a command that ends by itself, within [`LIMIT`].
fn finish(mut c: Command) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prodready");
    loop {
        match child.try_wait().expect("wait for prodready") {
            Some(_) => break,
            None if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("prodready did not finish within {LIMIT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().expect("prodready's output");
    (out, started.elapsed())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `text` holds every one of `parts`.
#[track_caller]
fn assert_says(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
    assert!(
        !text.contains("Error {") && !text.contains("Status {") && !text.contains("Os {"),
        "a Debug dump in:\n{text}"
    );
}

/// `prodready run` until its stderr has a line holding `needle` (or [`LIMIT`] passes), then
/// stopped; its stderr so far.
fn run_until_logged(home: &Path, args: &[&str], needle: &str) -> String {
    let mut child: Child = command(home, args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start prodready run");
    let Some(pipe) = child.stderr.take() else {
        panic!("no stderr pipe");
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut seen = String::new();
    let mut found = false;
    while !found {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                found = line.contains(needle);
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    // Only the child this test started, by its handle.
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no line with {needle:?} within {LIMIT:?}:\n{seen}");
    seen
}

/// A kubeconfig with contexts `dev` (current) and `staging`, both for `server`.
fn kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig.yaml");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{server}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: dev\n  context: {{cluster: c, user: u}}\n- name: staging\n  context: {{cluster: c, user: u}}\ncurrent-context: dev\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A loopback port nothing listens on (bound, read, closed).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn a_missing_kubeconfig_is_named_with_the_flag_to_point_at_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-such.kubeconfig");
    let missing = path_str(&missing);

    let (out, _) = finish(command(
        dir.path(),
        &["audit", "--cluster", "--kubeconfig", &missing],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let e = stderr(&out);
    assert_says(
        &e,
        &[
            &format!("kubeconfig {missing}: No such file or directory"),
            "--kubeconfig FILE",
            "KUBECONFIG",
        ],
    );
    // kube's own text quotes the path with Debug (`'"/…"'`): not shown.
    assert!(!e.contains("'\""), "{e}");

    // Through $KUBECONFIG: named as such.
    let mut c = command(dir.path(), &["audit", "--cluster", "--context", "dev"]);
    c.env("KUBECONFIG", &missing);
    let (out, _) = finish(c);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_says(
        &stderr(&out),
        &[
            &format!("$KUBECONFIG ({missing})"),
            "No such file",
            "--kubeconfig",
        ],
    );

    // The operator: exit 1, the file and its flag.
    let (out, _) = finish(command(dir.path(), &["run", "--kubeconfig", &missing]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_says(
        &stderr(&out),
        &[
            &format!("cannot read the kubeconfig {missing}: No such file or directory"),
            "point --kubeconfig",
            "KUBECONFIG",
        ],
    );
}

#[test]
fn a_context_the_kubeconfig_lacks_is_named_with_those_it_has() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = format!("http://127.0.0.1:{}", closed_port());
    let config = path_str(&kubeconfig(dir.path(), &server));
    for (args, code) in [
        (
            vec![
                "audit",
                "--cluster",
                "--kubeconfig",
                &config,
                "--context",
                "prod",
            ],
            2,
        ),
        (vec!["run", "--kubeconfig", &config, "--context", "prod"], 1),
    ] {
        let (out, _) = finish(command(dir.path(), &args));
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert_says(
            &stderr(&out),
            &[
                &format!("the kubeconfig {config} has no context \"prod\""),
                "(it has: dev, staging)",
                "give --context one of those",
            ],
        );
    }
}

#[test]
fn an_unreachable_api_server_is_named_with_what_to_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = format!("http://127.0.0.1:{}", closed_port());
    let config = path_str(&kubeconfig(dir.path(), &server));
    let (out, took) = finish(command(
        dir.path(),
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            &config,
            "--api-timeout",
            "5s",
        ],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_says(
        &stderr(&out),
        &[
            &format!("cannot reach the API server at {server}/ (context \"dev\" of {config})"),
            "cannot read the API server's version",
            // The cause a person can act on, not only "client error (Connect)".
            "Connection refused",
            "check that the cluster is running and reachable",
            "--context/--kubeconfig",
        ],
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn an_api_server_that_never_answers_names_the_timeout_flag_and_its_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Accepts connections and never answers; the thread ends with the test process.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(64) {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    let server = format!("http://127.0.0.1:{port}");
    let config = path_str(&kubeconfig(dir.path(), &server));
    let (out, took) = finish(command(
        dir.path(),
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            &config,
            "--api-timeout",
            "1500ms",
        ],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert_says(
        &stderr(&out),
        &[
            &format!("the API server at {server}/ (context \"dev\" of {config})"),
            "did not answer within 1.5s",
            "read the API server's version",
            "raise --api-timeout (now 1.5s)",
        ],
    );
    let e = stderr(&out);
    assert!(!e.contains("get_version") && !e.contains("1.5s ("), "{e}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// A minimal API server: `/version`, empty lists for every resource, 404 for the
/// ProductionPolicy API and any other API group's discovery, and watches held open without
/// events. One thread per connection, each closed after its answer (or held, for watches).
fn fake_api_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || answer(conn));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let target = words.next().unwrap_or_default().to_owned();
    let path = target.split('?').next().unwrap_or_default();
    let not_found = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;
    let (status, body) = if path == "/version" {
        (
            "200 OK",
            r#"{"major":"1","minor":"34","gitVersion":"v1.34.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":"linux/amd64"}"#.to_owned(),
        )
    } else if path.contains("prodready.dev")
        || path.contains("monitoring.coreos.com")
        || method != "GET"
    {
        ("404 Not Found", not_found.to_owned())
    } else if target.contains("watch=true") || target.contains("watch=1") {
        // A watch with nothing to say: headers, then silence until the client leaves.
        let _ = conn.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let _ = conn.flush();
        let mut sink = [0u8; 256];
        let _ = conn.set_read_timeout(Some(LIMIT));
        let _ = conn.read(&mut sink);
        return;
    } else if path.starts_with("/apis/") && path.matches('/').count() <= 3 {
        // Discovery of an API group version other than the two above: not served.
        ("404 Not Found", not_found.to_owned())
    } else {
        (
            "200 OK",
            r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#
                .to_owned(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
    let _ = conn.flush();
}

#[test]
fn a_missing_productionpolicy_crd_is_said_with_how_to_install_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = fake_api_server();
    let config = path_str(&kubeconfig(dir.path(), &server));

    // audit --cluster applies the baseline, and says why and what else to do.
    let (out, took) = finish(command(
        dir.path(),
        &[
            "audit",
            "--cluster",
            "--kubeconfig",
            &config,
            "--initial-list",
            "pages",
            "--api-timeout",
            "5s",
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_says(
        &stderr(&out),
        &[
            "applying the built-in baseline profile",
            "the ProductionPolicy CRD (productionpolicies.prodready.dev) is not installed",
            "kubectl apply -f crds/productionpolicies.prodready.dev.yaml",
            "--policy FILE or --profile NAME",
        ],
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");

    // The operator keeps running and says, in its log, what to install.
    let log = run_until_logged(
        dir.path(),
        &[
            "run",
            "--kubeconfig",
            &config,
            "--admin-addr",
            "127.0.0.1:0",
            "--webhook-enabled=false",
            "--initial-list",
            "pages",
            "--log-format",
            "text",
            "--identity",
            "error-messages-test",
        ],
        "ProductionPolicy CRD",
    );
    assert_says(
        &log,
        &[
            "the ProductionPolicy CRD (productionpolicies.prodready.dev) is not installed",
            "kubectl apply -f crds/productionpolicies.prodready.dev.yaml",
            "the watch retries",
        ],
    );
}

/// `prodready run` against the fake API server with the webhook serving `cert` and `key`,
/// until the webhook's certificate sentence is logged.
fn run_with_files(dir: &Path, config: &str, cert: &Path, key: &Path) -> String {
    let (cert, key) = (path_str(cert), path_str(key));
    run_until_logged(
        dir,
        &[
            "run",
            "--kubeconfig",
            config,
            "--admin-addr",
            "127.0.0.1:0",
            "--webhook-addr",
            "127.0.0.1:0",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--initial-list",
            "pages",
            "--log-format",
            "text",
            "--identity",
            "error-messages-test",
        ],
        "cannot obtain its serving certificate",
    )
}

#[test]
fn bad_certificate_files_are_named_with_their_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = fake_api_server();
    let config = path_str(&kubeconfig(dir.path(), &server));
    let missing = dir.path().join("missing.crt");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not PEM\n").expect("write");
    let ca = prodready::admission::certs::generate_ca(
        k8s_openapi::jiff::Timestamp::now(),
        Duration::from_secs(3600),
    )
    .expect("a certificate");
    let good_cert = dir.path().join("tls.crt");
    std::fs::write(&good_cert, &ca.cert_pem).expect("write");

    // A certificate file that does not exist.
    let log = run_with_files(dir.path(), &config, &missing, &garbage);
    assert_says(
        &log,
        &[
            &format!(
                "cannot read {} given by --tls-cert-file: No such file or directory",
                path_str(&missing)
            ),
            "point --tls-cert-file at another file",
            "the webhook retries",
        ],
    );

    // A certificate file that is not PEM.
    let log = run_with_files(dir.path(), &config, &garbage, &garbage);
    assert_says(
        &log,
        &[
            &format!(
                "{} given by --tls-cert-file holds no PEM certificate",
                path_str(&garbage)
            ),
            "point --tls-cert-file at a PEM file holding the certificate chain",
        ],
    );

    // A good certificate with a key file that is not PEM.
    let log = run_with_files(dir.path(), &config, &good_cert, &garbage);
    assert_says(
        &log,
        &[
            &format!(
                "{} given by --tls-key-file is not a PEM private key",
                path_str(&garbage)
            ),
            "point --tls-key-file at a PEM file holding the certificate's private key",
        ],
    );
}
