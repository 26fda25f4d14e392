//! The user's remotes: named daemons, each with its URL and the person's token,
//! kept in `remotes.json` in their config folder (found with `directories`,
//! or `FUNNEL_CONFIG_DIR`), readable by them alone. `funnel login` writes one,
//! `funnel tui --remote NAME` and `funnel sync` read it: a laptop keeps a
//! token, never a database URL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE: &str = "remotes.json";

#[derive(Debug, thiserror::Error)]
pub enum RemotesError {
    #[error("no config folder for this user (set FUNNEL_CONFIG_DIR)")]
    NoConfigDir,
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("no remote named `{name}`; {hint}")]
    Unknown { name: String, hint: String },
    #[error(
        "a remote's name is 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit: `{0}`"
    )]
    BadName(String),
    #[error("`{url}` is not a daemon's address: {why}")]
    BadUrl { url: String, why: String },
}

/// One daemon and the token that speaks for this person there.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The daemon's base URL (`https://funnel.example.com`).
    pub url: String,
    pub token: String,
    /// The token's name and role as the daemon reported them at login.
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// Never the token: a profile may end up in a log line or a panic.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("token", &"<secret>")
            .field("actor", &self.actor)
            .field("role", &self.role)
            .finish()
    }
}

/// Every remote of this user, as stored.
#[derive(Debug, Clone, Default)]
pub struct Remotes {
    path: PathBuf,
    remotes: BTreeMap<String, Profile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    remotes: BTreeMap<String, Profile>,
}

/// This user's config folder: `FUNNEL_CONFIG_DIR` when set, else the
/// platform's (`~/.config/funnel` on Linux).
pub fn config_dir() -> Result<PathBuf, RemotesError> {
    if let Some(dir) = std::env::var_os("FUNNEL_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "funnel")
        .map(|d| d.config_dir().to_path_buf())
        .ok_or(RemotesError::NoConfigDir)
}

/// A remote's name: the same rules as a token's, minus `@`.
pub fn check_name(name: &str) -> Result<(), RemotesError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RemotesError::BadName(name.to_string()))
    }
}

/// A daemon's base URL, normalized (no trailing slash). Plain `http` is taken
/// only for a loopback host unless `allow_http`: a token sent in clear over a
/// network is a token given away.
pub fn check_url(text: &str, allow_http: bool) -> Result<String, RemotesError> {
    let bad = |why: &str| RemotesError::BadUrl {
        url: text.to_string(),
        why: why.to_string(),
    };
    let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    let host = url
        .host()
        .ok_or_else(|| bad("it names no host"))?
        .to_owned();
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match &host {
                url::Host::Domain(d) => *d == "localhost" || d.ends_with(".localhost"),
                url::Host::Ipv4(a) => a.is_loopback(),
                url::Host::Ipv6(a) => a.is_loopback(),
            };
            if !loopback && !allow_http {
                return Err(bad(
                    "plain http would send the token in clear; use https, or --allow-http on a network you trust",
                ));
            }
        }
        _ => return Err(bad("use an http or https URL")),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad(
            "give the daemon's base URL alone (no query, fragment or user)",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl Remotes {
    /// The remotes in `dir` (none when the file is not there yet).
    pub fn load(dir: &Path) -> Result<Remotes, RemotesError> {
        let path = dir.join(FILE);
        let remotes = match std::fs::read(&path) {
            Ok(bytes) => {
                let mut de = serde_json::Deserializer::from_slice(&bytes);
                let disk: OnDisk =
                    serde_path_to_error::deserialize(&mut de).map_err(|e| RemotesError::File {
                        path: path.clone(),
                        message: format!(
                            "{} (at `{}`); fix or remove the file",
                            e.inner(),
                            e.path()
                        ),
                    })?;
                disk.remotes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(RemotesError::File {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Ok(Remotes { path, remotes })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self, name: &str) -> Result<&Profile, RemotesError> {
        self.remotes.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.remotes.keys().map(String::as_str).collect();
            RemotesError::Unknown {
                name: name.to_string(),
                hint: if names.is_empty() {
                    "log in first: `funnel login NAME --remote URL`".to_string()
                } else {
                    crate::diagnostic::suggest(name, &names, "the remotes are")
                },
            }
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Profile)> {
        self.remotes.iter()
    }

    pub fn set(&mut self, name: &str, profile: Profile) -> Result<(), RemotesError> {
        check_name(name)?;
        self.remotes.insert(name.to_string(), profile);
        Ok(())
    }

    /// Whether there was one to remove.
    pub fn remove(&mut self, name: &str) -> bool {
        self.remotes.remove(name).is_some()
    }

    /// Writes the file whole: a new file readable by this user alone, then a
    /// rename, so a crash leaves the old file or the new one, never half.
    pub fn save(&self) -> Result<(), RemotesError> {
        let err = |message: String| RemotesError::File {
            path: self.path.clone(),
            message,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let text = serde_json::to_string_pretty(&OnDisk {
            remotes: self.remotes.clone(),
        })
        .map_err(|e| err(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        {
            use std::io::Write as _;
            let mut f = options.open(&tmp).map_err(|e| err(e.to_string()))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_all())
                .map_err(|e| err(e.to_string()))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(url: &str) -> Profile {
        Profile {
            url: url.into(),
            token: "funnel_secret".into(),
            actor: Some("token:mira".into()),
            role: Some("editor".into()),
        }
    }

    #[test]
    fn remotes_round_trip_through_a_file_only_its_owner_reads() {
        let dir = tempfile::tempdir().expect("dir");
        let mut r = Remotes::load(dir.path()).expect("empty");
        assert!(r.get("team").is_err());
        r.set("team", profile("https://funnel.example.com"))
            .expect("set");
        r.save().expect("save");
        let back = Remotes::load(dir.path()).expect("load");
        assert_eq!(
            back.get("team").expect("team"),
            &profile("https://funnel.example.com")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(back.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut back = back;
        assert!(back.remove("team"));
        assert!(!back.remove("team"));
    }

    #[test]
    fn a_profile_never_shows_its_token() {
        let text = format!("{:?}", profile("https://x.example"));
        assert!(!text.contains("funnel_secret"), "{text}");
    }

    #[test]
    fn an_unknown_remote_names_the_ones_there_are() {
        let dir = tempfile::tempdir().expect("dir");
        let mut r = Remotes::load(dir.path()).expect("empty");
        r.set("production", profile("https://a.example"))
            .expect("set");
        let e = r.get("prodution").expect_err("unknown").to_string();
        assert!(e.contains("production"), "{e}");
    }

    #[test]
    fn a_broken_file_is_named_with_where_it_breaks() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join(FILE), r#"{"remotes": {"a": {"url": 3}}}"#).expect("write");
        let e = Remotes::load(dir.path()).expect_err("broken").to_string();
        assert!(
            e.contains("remotes.json") && e.contains("remotes.a.url"),
            "{e}"
        );
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert_eq!(
            check_url("https://funnel.example.com/", false).expect("https"),
            "https://funnel.example.com"
        );
        assert!(check_url("http://127.0.0.1:7878", false).is_ok());
        assert!(check_url("http://team.localhost:7878", false).is_ok());
        assert!(check_url("http://10.0.0.5:7878", false).is_err());
        assert!(check_url("http://10.0.0.5:7878", true).is_ok());
        assert!(check_url("ftp://x.example", true).is_err());
        assert!(check_url("https://x.example/?token=1", false).is_err());
        assert!(check_name("team-eu.1").is_ok());
        assert!(check_name("-x").is_err() && check_name("a b").is_err());
    }
}
