//! JSON Schema (draft-07) for every file kind, generated from the models.
//!
//! schemars renders a flattened enum (a step's common keys beside its `type`'s
//! keys) as shared `properties` next to a `oneOf`; draft-07's `additionalProperties`
//! cannot see into a `oneOf`, so [`finish`] copies the shared keys into each variant
//! and closes every object. The result rejects unknown keys everywhere, as the
//! validator does.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

use crate::model::{self, FileKind};

/// The base URL schemas are published under, for `$id`.
pub const SCHEMA_BASE: &str = "https://funnel.dev/schema/";

/// The schema of one file kind.
pub fn schema_for(kind: FileKind) -> Value {
    let mut schema = match kind {
        FileKind::Config => generate::<model::config::WorkspaceConfig>(),
        FileKind::Workflow => generate::<model::workflow::Workflow>(),
        FileKind::WorkflowTests => generate::<model::workflow_test::WorkflowTests>(),
        FileKind::SiteTemplate => generate::<model::site_template::SiteTemplate>(),
        FileKind::Component => generate::<model::component::Component>(),
        FileKind::EmailTemplate => generate::<model::email_template::EmailTemplate>(),
        FileKind::Site => generate::<model::site::Site>(),
        FileKind::Fields => generate::<model::contacts::FieldsFile>(),
        FileKind::Lists => generate::<model::contacts::ListsFile>(),
        FileKind::Segments => generate::<model::contacts::SegmentsFile>(),
        FileKind::Campaign => generate::<model::campaign::Campaign>(),
        FileKind::EmailLayout => generate::<model::email_layout::EmailLayout>(),
        FileKind::Scoring => generate::<model::contacts::ScoringFile>(),
        FileKind::Pipelines => generate::<model::contacts::PipelinesFile>(),
    };
    finish(&mut schema);
    if let Value::Object(map) = &mut schema {
        map.insert(
            "$id".into(),
            Value::String(format!("{SCHEMA_BASE}{}", kind.schema_file())),
        );
        map.insert(
            "title".into(),
            Value::String(format!("funnel: {}", kind.describe())),
        );
    }
    schema
}

/// The committed `schema/` file of `kind`, built into the binary. A test keeps each
/// equal to what [`schema_for`] generates; the validator parses these instead of
/// generating, which keeps the generator's code out of every run (most of a
/// daemon's code is resident; see docs/daemon.md, "Idle memory").
pub fn committed_text(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Config => include_str!("../schema/funnel.schema.json"),
        FileKind::Workflow => include_str!("../schema/workflow.schema.json"),
        FileKind::WorkflowTests => include_str!("../schema/workflow-test.schema.json"),
        FileKind::SiteTemplate => include_str!("../schema/site-template.schema.json"),
        FileKind::Component => include_str!("../schema/component.schema.json"),
        FileKind::EmailTemplate => include_str!("../schema/email-template.schema.json"),
        FileKind::EmailLayout => include_str!("../schema/email-layout.schema.json"),
        FileKind::Site => include_str!("../schema/site.schema.json"),
        FileKind::Fields => include_str!("../schema/fields.schema.json"),
        FileKind::Lists => include_str!("../schema/lists.schema.json"),
        FileKind::Segments => include_str!("../schema/segments.schema.json"),
        FileKind::Scoring => include_str!("../schema/scoring.schema.json"),
        FileKind::Pipelines => include_str!("../schema/pipelines.schema.json"),
        FileKind::Campaign => include_str!("../schema/campaign.schema.json"),
    }
}

/// The schema as it is written to disk: pretty JSON with a trailing newline.
/// The JSON Schema of a recipe's `recipe.yaml` (not a workspace file kind:
/// recipes live under `recipes/`, beside the workspace's folders).
pub fn recipe_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&generate::<model::recipe::Recipe>()).unwrap_or_default();
    text.push('\n');
    text
}

pub fn schema_text(kind: FileKind) -> String {
    let mut text = serde_json::to_string_pretty(&schema_for(kind)).unwrap_or_default();
    text.push('\n');
    text
}

fn generate<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// Distributes shared properties into `oneOf` variants and closes every object.
fn finish(value: &mut Value) {
    match value {
        Value::Object(map) => {
            distribute(map);
            close(map);
            for (_, child) in map.iter_mut() {
                finish(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(finish),
        _ => {}
    }
}

fn distribute(map: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = map.get("oneOf") else {
        return;
    };
    if !map.contains_key("properties") || variants.is_empty() {
        return;
    }
    let shared_props = map.remove("properties");
    let shared_required = map.remove("required");
    map.remove("additionalProperties");
    let Some(Value::Array(variants)) = map.get_mut("oneOf") else {
        return;
    };
    for variant in variants.iter_mut() {
        let Value::Object(v) = variant else { continue };
        if let Some(Value::Object(shared)) = &shared_props {
            let props = v
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(props) = props {
                // Shared keys first, so editors list `id` before a step's own keys.
                let mut merged = shared.clone();
                merged.extend(std::mem::take(props));
                *props = merged;
            }
        }
        if let Some(Value::Array(shared_req)) = &shared_required {
            let req = v
                .entry("required")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(req) = req {
                let mut merged = shared_req.clone();
                merged.extend(std::mem::take(req));
                *req = merged;
            }
        }
        v.insert("additionalProperties".into(), Value::Bool(false));
    }
}

fn close(map: &mut Map<String, Value>) {
    let is_object = map.get("type") == Some(&Value::String("object".into()));
    if is_object && map.contains_key("properties") && !map.contains_key("additionalProperties") {
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validator checks files against the built-in copies: a model changed
    /// without `funnel schema --out schema` would otherwise check the old shape.
    #[test]
    fn the_built_in_schemas_are_what_the_types_generate() {
        for kind in FileKind::ALL {
            let committed: Value =
                serde_json::from_str(committed_text(kind)).expect("committed schema parses");
            assert!(
                committed == schema_for(kind),
                "schema/{} is out of date: run `cargo run -- schema --out schema`",
                kind.schema_file()
            );
        }
    }

    /// A variant key with the name of a shared key would be swallowed by the shared
    /// one at load time (serde's flatten), so the two must never collide.
    #[test]
    fn variant_keys_never_shadow_shared_keys() {
        for kind in FileKind::ALL {
            let mut raw = match kind {
                FileKind::Workflow => generate::<model::workflow::Workflow>(),
                _ => continue,
            };
            let defs = raw["definitions"].take();
            for (name, def) in defs.as_object().into_iter().flatten() {
                let (Some(shared), Some(variants)) = (
                    def.get("properties").and_then(Value::as_object),
                    def.get("oneOf").and_then(Value::as_array),
                ) else {
                    continue;
                };
                for v in variants {
                    for key in v["properties"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, _)| k)
                    {
                        assert!(
                            !shared.contains_key(key),
                            "{name}: variant key `{key}` shadows a shared key"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_object_rejects_unknown_keys() {
        fn walk(v: &Value, path: &str) {
            match v {
                Value::Object(m) => {
                    if m.get("type") == Some(&Value::String("object".into()))
                        && m.contains_key("properties")
                    {
                        assert_eq!(
                            m.get("additionalProperties"),
                            Some(&Value::Bool(false)),
                            "{path} accepts unknown keys"
                        );
                    }
                    for (k, c) in m {
                        walk(c, &format!("{path}/{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|c| walk(c, path)),
                _ => {}
            }
        }
        for kind in FileKind::ALL {
            walk(&schema_for(kind), kind.name());
        }
    }
}
