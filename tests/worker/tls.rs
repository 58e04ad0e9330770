//! TLS to the database, against a private MariaDB started by the test: first without TLS
//! (`ssl-mode=required` is refused, and the doctor flags a plain connection over the
//! network), then with a certificate signed by a CA made for the test (`required` and
//! `verify_identity` connect encrypted, `verify_ca` with another CA is refused with a message
//! that says what to check).

use std::path::{Path, PathBuf};
use std::process::Command;

use jetpack_worker::store::{Store, StoreError};

use crate::cli::{output, worker_command};
use crate::reliability::{PrivateMariaDb, is_root};

/// Runs openssl with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (package openssl) is needed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost; plus a second CA
/// that signed nothing. Returns (ca.pem, other-ca.pem, server.pem, server.key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    for name in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-subj",
                &format!("/CN=Jetpack test {name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
        ],
    );
    if is_root() {
        // mariadbd runs as mysql and must read its key.
        let ok = Command::new("chown")
            .args(["-R", "mysql:mysql"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    (
        dir.join("ca.pem"),
        dir.join("other-ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// An address of this machine that is not loopback, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route's source address.
    socket.connect("10.255.255.254:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Creates the `whmcs` database and a user that may connect from anywhere.
async fn prepare(server: &PrivateMariaDb) {
    server
        .as_root(&[
            "CREATE DATABASE IF NOT EXISTS whmcs",
            "CREATE USER IF NOT EXISTS 'whmcs'@'%' IDENTIFIED BY 'tls-test-pw'",
            "GRANT ALL PRIVILEGES ON whmcs.* TO 'whmcs'@'%'",
        ])
        .await;
}

/// `check`'s report for `url` (stdout).
async fn doctor(url: &str) -> String {
    let mut cmd = worker_command(url, "http://127.0.0.1:9");
    cmd.arg("check");
    let out = output(cmd).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn tls_to_the_database_is_honoured_and_checked() {
    let mut server = tokio::task::spawn_blocking(PrivateMariaDb::install)
        .await
        .unwrap();
    let certs = server.dir().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (ca, other_ca, cert, key) = tokio::task::spawn_blocking({
        let certs = certs.clone();
        move || certificates(&certs)
    })
    .await
    .unwrap();
    server.extra = vec!["--bind-address=0.0.0.0".into()];
    server.start().await;
    prepare(&server).await;
    let base = server.url("whmcs", "tls-test-pw", "whmcs");

    // 1. No TLS on the server: `required` is refused, with a message that says what to check.
    let refused = Store::connect(&format!("{base}?ssl-mode=required"), 1).await;
    let err = refused.expect_err("a server without TLS was accepted under ssl-mode=required");
    assert!(matches!(err, StoreError::Tls(_)), "{err:?}");
    let said = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        said.contains("TLS to the database failed") && said.contains("does not support TLS"),
        "{said}"
    );
    // The default (`preferred`) connects in the clear; the doctor accepts that on loopback
    // and flags it over the network.
    let report = doctor(&base).await;
    assert!(
        report.contains("ok   database connection not encrypted (database on this host)"),
        "{report}"
    );
    match non_loopback_ip() {
        Some(ip) => {
            let remote = base.replace("127.0.0.1", &ip.to_string());
            let report = doctor(&remote).await;
            assert!(
                report.contains(&format!(
                    "FAIL database connection encryption: the connection to {ip} is not encrypted"
                )),
                "{report}"
            );
            let disabled = doctor(&format!("{remote}?ssl-mode=disabled")).await;
            assert!(
                disabled.contains("ok   database connection not encrypted (ssl-mode=disabled)"),
                "{disabled}"
            );
        }
        None => println!("no non-loopback address on this machine: the network case is skipped"),
    }

    // 2. The server with TLS.
    server.stop(libc::SIGTERM).await;
    server.extra = vec![
        "--bind-address=0.0.0.0".into(),
        format!("--ssl-ca={}", ca.display()),
        format!("--ssl-cert={}", cert.display()),
        format!("--ssl-key={}", key.display()),
    ];
    server.start().await;
    for mode in [
        "ssl-mode=required".to_owned(),
        format!("ssl-mode=verify_ca&ssl-ca={}", ca.display()),
        format!("ssl-mode=verify_identity&ssl-ca={}", ca.display()),
    ] {
        let url = format!("{base}?{mode}");
        let pool = Store::connect(&url, 1)
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e:?}"));
        let store = Store::open(pool, None).await.unwrap();
        let cipher = store.tls_cipher().await.unwrap();
        assert!(cipher.is_some(), "{mode}: Ssl_cipher is empty");
        let report = doctor(&url).await;
        assert!(
            report.contains("ok   database connection encrypted (TLS, "),
            "{mode}: {report}"
        );
    }
    // A CA that did not sign the server's certificate is refused, and the binary says so.
    let wrong = format!("{base}?ssl-mode=verify_ca&ssl-ca={}", other_ca.display());
    let err = Store::connect(&wrong, 1)
        .await
        .expect_err("a certificate from another CA was accepted");
    assert!(matches!(err, StoreError::Tls(_)), "{err:?}");
    let mut cmd = worker_command(&wrong, "http://127.0.0.1:9");
    cmd.arg("status");
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS to the database failed; check ssl-mode and ssl-ca"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tls-test-pw"),
        "the password was printed: {stderr}"
    );
    let report = doctor(&wrong).await;
    assert!(
        report.contains("FAIL database: TLS to the database failed"),
        "{report}"
    );
}
