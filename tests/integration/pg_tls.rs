//! TLS to PostgreSQL for real: a second cluster (`pg_createcluster`) with `ssl = on`
//! and a certificate from a CA this test makes (with the `openssl` command). With
//! `sslmode=verify-full` the store connects to the host its certificate names and
//! is refused for another host name or another CA; `require` encrypts without
//! checking. Skips with a message where the PostgreSQL cluster tools are missing,
//! except under CI.

use std::path::{Path, PathBuf};
use std::process::Command;

use funnel::store::postgres::PgStore;

/// The cluster, dropped (stopped and deleted) when the test ends however it ends.
struct Cluster {
    version: String,
    name: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .output();
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").args(args).current_dir(dir));
}

/// A CA (`<name>.pem`, `<name>.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=funnel test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn tools_present() -> bool {
    [
        "pg_createcluster",
        "pg_ctlcluster",
        "pg_dropcluster",
        "openssl",
    ]
    .iter()
    .all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn verify_full_connects_to_the_named_host_and_refuses_another_host_or_ca() {
    if !tools_present() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "pg_createcluster and openssl are required under CI"
        );
        eprintln!("skipping: no pg_createcluster or openssl here");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    make_ca(d, "ca");
    make_ca(d, "other-ca");
    // The server's certificate names `localhost` only.
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        d,
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
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    // The server runs as `postgres`: it must reach the folder and own its key.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    run(Command::new("chown")
        .args(["postgres", "server.key", "server.pem"])
        .current_dir(d));
    std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod key");

    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .max()
        .expect("a PostgreSQL version");
    let port = free_port();
    let cluster = Cluster {
        version: version.clone(),
        name: format!("funnel_tls_{}", std::process::id()),
    };
    let _ = Command::new("pg_dropcluster")
        .args(["--stop", &version, &cluster.name])
        .output();
    run(Command::new("pg_createcluster").args([
        &version,
        &cluster.name,
        "-p",
        &port.to_string(),
        "--",
        "--auth=trust",
        "--username=root",
    ]));
    let conf = PathBuf::from(format!(
        "/etc/postgresql/{version}/{}/conf.d/funnel-tls.conf",
        cluster.name
    ));
    std::fs::write(
        &conf,
        format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nlisten_addresses = 'localhost'\n",
            d.join("server.pem").display(),
            d.join("server.key").display()
        ),
    )
    .expect("conf");
    run(Command::new("pg_ctlcluster").args([&version, &cluster.name, "start"]));

    let url = |host: &str, query: &str| format!("postgres://root@{host}:{port}/postgres?{query}");
    let ca = d.join("ca.pem").display().to_string();
    let other = d.join("other-ca.pem").display().to_string();

    // verify-full, the right CA and the host the certificate names: connected, over TLS.
    let good = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let store = PgStore::open(&good).unwrap_or_else(|e| panic!("verify-full refused: {e}"));
    let over_tls: bool = store
        .read(|db| {
            db.query_row(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                funnel::db_params![],
                |r| r.get(0),
            )
        })
        .expect("pg_stat_ssl");
    assert!(over_tls, "the session is not encrypted");
    drop(store);

    // Another CA: refused.
    let wrong_ca = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let err = PgStore::open(&wrong_ca).expect_err("a certificate from another CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Another host name (the address, which the certificate does not name): refused.
    let wrong_host = url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let err = PgStore::open(&wrong_host).expect_err("a host the certificate does not name");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // require: encrypted, whoever the certificate names.
    let require = url("127.0.0.1", "sslmode=require");
    PgStore::open(&require).unwrap_or_else(|e| panic!("require refused: {e}"));
    drop(cluster);
}
