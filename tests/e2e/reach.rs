//! The box over HTTPS (issue 16, its first part): with `web.tls_listen`, the web UI and API answer
//! over TLS with the box's certificate to a client that trusts it and reaches the box by name, the
//! plain port only redirects there (and answers `/healthz`), and cookies are `Secure`.

use std::process::Command;

use outpost_tests::{free_port, write_config, BoxProcess, Client};

/// `GET path` over TLS to 127.0.0.1:`port` as `outpost.local` (its server name and `Host`), trusting
/// only `cafile`: the status line and the headers (Python's `ssl`, a client of its own).
fn https_get(port: u16, cafile: &std::path::Path, path: &str) -> String {
    let script = r#"
import socket, ssl, sys
port, cafile, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="outpost.local") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: outpost.local:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
print(data.split(b"\r\n\r\n")[0].decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string(), &cafile.display().to_string(), path])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_web_answers_over_https_by_name_and_the_plain_port_redirects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let https = free_port();
    let config = write_config(dir.path(), &format!("[web]\ntls_listen = \"127.0.0.1:{https}\"\n"));
    let data = dir.path().join("data");
    let b = BoxProcess::start("run", &data, &["--config", &config]);
    assert!(
        b.printed.iter().any(|l| l.starts_with(&format!("HTTPS on 127.0.0.1:{https}"))),
        "{:?}",
        b.printed
    );

    // The plain port: /healthz for the service manager, everything else sent to HTTPS.
    let mut plain = Client::new(&b.url);
    assert_eq!(plain.get("/healthz").status, 200);
    let res = plain.get("/login?next=/people");
    assert_eq!(res.status, 308);
    assert_eq!(
        res.location.as_deref(),
        Some(format!("https://127.0.0.1:{https}/login?next=/people").as_str())
    );

    // Over TLS by name, trusting the box's certificate: the page, and its cookie Secure.
    let cafile = data.join("tls/box.crt");
    let head = https_get(https, &cafile, "/login");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let cookie =
        head.lines().find(|l| l.to_lowercase().starts_with("set-cookie: outpost_csrf=")).expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(https_get(https, &cafile, "/healthz").starts_with("HTTP/1.1 200"));

    // A client that does not trust the certificate gets nowhere.
    let other = outpost_tests::another_box_certificate(&dir.path().join("other"));
    let refused = Command::new("python3")
        .args(["-c", "import socket,ssl,sys; ssl.create_default_context(cafile=sys.argv[2]).wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='outpost.local')", &https.to_string(), &other.display().to_string()])
        .output()
        .expect("python3");
    assert!(!refused.status.success(), "a certificate it does not trust is refused");
}
