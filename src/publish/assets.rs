//! A site's static files: the template's `assets/` under the site's own
//! `sites/<id>/assets/` (a site's file replaces the template's of the same name),
//! each published under a name carrying a hash of its content, so that hosts can
//! cache them forever and a change is a new address.

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::PublishError;
use super::resolve::ResolvedSite;
use crate::workspace::Workspace;

/// Assets by output path, and each source name's (`assets/logo.svg`) address.
#[derive(Debug, Default)]
pub struct Assets {
    pub files: BTreeMap<String, Vec<u8>>,
    pub urls: HashMap<String, String>,
}

/// The largest asset accepted: a landing page's images should be far smaller.
const MAX_ASSET_BYTES: usize = 5 * 1024 * 1024;

/// `assets/logo.svg` with content `bytes` → `assets/logo.1a2b3c4d5e.svg`.
pub fn fingerprinted(path: &str, bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex = hex::encode(&hash[..5]);
    match path.rsplit_once('.') {
        Some((stem, ext)) if !stem.ends_with('/') && !stem.is_empty() => {
            format!("{stem}.{hex}.{ext}")
        }
        _ => format!("{path}.{hex}"),
    }
}

/// Collects and fingerprints the site's assets.
pub fn collect(ws: &Workspace, site: &ResolvedSite) -> Result<Assets, PublishError> {
    let mut sources: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let prefix = format!("sites/{}/assets/", site.template);
    for (rel, bytes) in ws.template_files_under(site.template_origin, &prefix) {
        sources.insert(format!("assets/{rel}"), bytes);
    }
    let mut own = Vec::new();
    crate::workspace::files_under(
        &ws.root.join("sites").join(&site.id).join("assets"),
        "",
        &mut own,
    );
    for (rel, bytes) in own {
        sources.insert(format!("assets/{rel}"), bytes);
    }
    let mut out = Assets::default();
    for (name, bytes) in sources {
        if bytes.len() > MAX_ASSET_BYTES {
            return Err(PublishError::Invalid {
                site: site.id.clone(),
                message: format!(
                    "{name} is {} KB; assets are limited to {} KB (compress or resize it)",
                    bytes.len() / 1024,
                    MAX_ASSET_BYTES / 1024
                ),
            });
        }
        if name.contains("..") || name.contains('\\') {
            continue;
        }
        let path = fingerprinted(&name, &bytes);
        out.urls.insert(name, format!("/{path}"));
        out.files.insert(path, bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::fingerprinted;

    #[test]
    fn fingerprints_follow_the_content() {
        let a = fingerprinted("assets/logo.svg", b"<svg/>");
        assert!(a.starts_with("assets/logo.") && a.ends_with(".svg"), "{a}");
        assert_eq!(a.len(), "assets/logo..svg".len() + 10);
        assert_ne!(a, fingerprinted("assets/logo.svg", b"<svg />"));
        assert_eq!(a, fingerprinted("assets/logo.svg", b"<svg/>"));
        assert!(fingerprinted("assets/LICENSE", b"x").starts_with("assets/LICENSE."));
    }
}
