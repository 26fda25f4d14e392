//! HTTPS for a site's domain over ACME, for real: Debian's `pebble` as the
//! authority, with `pebble-challtestsrv` as its DNS server answering every name
//! with 127.0.0.1, no bypass variables (pebble validates each HTTP-01
//! challenge against the daemon's plain listener), certificates valid for
//! 120 s. The daemon obtains the demo site's certificate, serves it over
//! HTTPS on its domain with HSTS, redirects plain HTTP, and serves a renewed
//! certificate (a new serial) without a restart. Skips with a message where
//! pebble is missing, except under CI.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use x509_cert::der::Decode;

use crate::support::{demo, funnel_for};

const DOMAIN: &str = "www.northwind.example";

/// Children killed when the test ends however it ends.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn pebble_present() -> bool {
    ["pebble", "pebble-challtestsrv"]
        .iter()
        .all(|t| Command::new(t).arg("-h").output().is_ok())
}

/// A CA and a leaf for 127.0.0.1 signed by it, for pebble's own listener
/// (Debian's package ships none): `ca.pem`, `pebble.pem`, `pebble.key`.
fn listener_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "funnel test ACME listener CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &Issuer::new(ca, ca_key))
        .expect("leaf cert");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    std::fs::write(dir.join("pebble.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("pebble.key"), leaf_key.serialize_pem()).expect("write");
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on {port}");
}

/// The serial (lowercase hex) and HSTS header of the certificate served for
/// the demo's domain on `https`, over a new connection; None while the
/// handshake fails (no certificate yet).
async fn served(root: &reqwest::Certificate, https: SocketAddr) -> Option<(String, String)> {
    let client = reqwest::Client::builder()
        .tls_certs_only([root.clone()])
        .resolve(DOMAIN, https)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let r = client
        .get(format!("https://{DOMAIN}:{}/", https.port()))
        .send()
        .await
        .ok()?;
    assert!(r.status().is_success(), "{}", r.status());
    let der = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?
        .to_vec();
    let cert = x509_cert::Certificate::from_der(&der).expect("X.509");
    let hsts = r
        .headers()
        .get("strict-transport-security")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((
        hex::encode(cert.tbs_certificate.serial_number.as_bytes()),
        hsts,
    ))
}

#[test]
fn a_sites_certificate_is_issued_served_and_renewed_without_a_restart() {
    if crate::backend::is_postgres() {
        // The certificates' rows are checked on PostgreSQL by the unit tests
        // of `tls::certs`; the two minutes of pebble run once, on SQLite.
        eprintln!("skipped on PostgreSQL: runs in the SQLite pass");
        return;
    }
    if !pebble_present() {
        assert!(
            std::env::var("CI").is_err(),
            "pebble and pebble-challtestsrv must be installed under CI (.ci/test installs them)"
        );
        eprintln!("skipped: pebble is not installed (apt-get install pebble)");
        return;
    }
    let dir = demo();
    let d = dir.path();
    let certs = tempfile::tempdir().expect("dir");
    listener_certificates(certs.path());
    let (acme_port, mgmt_port, dns_port, dns_mgmt_port) =
        (free_port(), free_port(), free_port(), free_port());
    let (http_port, https_port, alpn_port) = (free_port(), free_port(), free_port());
    let mut running = Running(Vec::new());

    running.0.push(
        Command::new("pebble-challtestsrv")
            .args([
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
                "-dns01",
                &format!("127.0.0.1:{dns_port}"),
                "-management",
                &format!("127.0.0.1:{dns_mgmt_port}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv"),
    );
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{acme_port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
        "certificate": certs.path().join("pebble.pem"),
        "privateKey": certs.path().join("pebble.key"),
        "httpPort": http_port,
        "tlsPort": alpn_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": 120,
    }});
    let config_file = certs.path().join("pebble.json");
    std::fs::write(&config_file, config.to_string()).expect("config");
    running.0.push(
        Command::new("pebble")
            .arg("-config")
            .arg(&config_file)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}"), "-strict"])
            // No random sleep before validating, and every order validated
            // anew (a renewal proves control again); validation itself stays on.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble"),
    );
    wait_for_port(acme_port, "pebble");
    wait_for_port(mgmt_port, "pebble's management");

    std::fs::copy(certs.path().join("ca.pem"), d.join("acme-ca.pem")).expect("copy CA");
    let yaml = std::fs::read_to_string(d.join("funnel.yaml")).expect("funnel.yaml");
    std::fs::write(
        d.join("funnel.yaml"),
        format!(
            "{yaml}\ndaemon:\n  tls:\n    acme_directory: https://127.0.0.1:{acme_port}/dir\n    acme_ca_file: acme-ca.pem\n    contact: Ops <ops@northwind.example>\n    hsts_max_age: 600\n"
        ),
    )
    .expect("write funnel.yaml");

    let mut child = funnel_for(d)
        .args([
            "daemon",
            "--bind",
            &format!("127.0.0.1:{http_port}"),
            "--https-bind",
            &format!("127.0.0.1:{https_port}"),
            "--no-watch",
        ])
        .current_dir(d)
        .env("RUST_LOG", "funnel=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("funnel daemon");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let err = child.stderr.take().expect("stderr");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if let Ok(mut s) = sink.lock() {
                s.push_str(&l);
                s.push('\n');
            }
        }
    });
    running.0.push(child);
    let mut line = String::new();
    out.read_line(&mut line).expect("banner");
    assert!(line.contains("listening on"), "{line}");
    std::thread::spawn(move || for _ in out.lines().map_while(Result::ok) {});

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        // The issuing root exists only while this pebble runs.
        let listener_ca = reqwest::Certificate::from_pem(
            &std::fs::read(certs.path().join("ca.pem")).expect("CA file"),
        )
        .expect("CA");
        let mgmt = reqwest::Client::builder()
            .tls_certs_only([listener_ca])
            .build()
            .expect("client");
        let root_pem = mgmt
            .get(format!("https://127.0.0.1:{mgmt_port}/roots/0"))
            .send()
            .await
            .expect("pebble's root")
            .bytes()
            .await
            .expect("root body");
        let root = reqwest::Certificate::from_pem(&root_pem).expect("root PEM");
        let https: SocketAddr = format!("127.0.0.1:{https_port}").parse().expect("addr");

        let start = Instant::now();
        let (first, hsts) = loop {
            if let Some(s) = served(&root, https).await {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no certificate served within 60 s; daemon log:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(hsts, "max-age=600");

        // Plain HTTP on the domain goes to HTTPS, the path kept.
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(
                DOMAIN,
                format!("127.0.0.1:{http_port}").parse().expect("addr"),
            )
            .build()
            .expect("client");
        let r = plain
            .get(format!("http://{DOMAIN}:{http_port}/pricing?plan=pro"))
            .send()
            .await
            .expect("plain request");
        assert_eq!(r.status(), 308);
        assert_eq!(
            r.headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
            format!("https://{DOMAIN}:{https_port}/pricing?plan=pro")
        );

        // Renewed at two thirds of 120 s, served from the next handshake on.
        let renewing = Instant::now();
        loop {
            let now = served(&root, https).await;
            if let Some((serial, _)) = &now
                && *serial != first
            {
                break;
            }
            assert!(
                renewing.elapsed() < Duration::from_secs(150),
                "still serial {first} after 150 s; daemon log:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    // One process all along: the renewal needed no restart.
    assert!(
        running
            .0
            .iter_mut()
            .all(|c| c.try_wait().ok().flatten().is_none()),
        "a process ended early"
    );
    let kept: i64 = crate::backend::scalar(
        d,
        "SELECT count(*) FROM tls_certificates WHERE domain = ?1",
        funnel::db_params![DOMAIN],
    );
    assert_eq!(kept, 1, "one current certificate kept for the domain");
}
