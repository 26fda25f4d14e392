//! The OpenAPI 3.1 document of `/api`, made from the route table itself: every
//! route the router serves is in it, with its role (`x-funnel-role`), its path
//! parameters, its body and the error shape every route shares.

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json, json};

/// The document.
pub fn document() -> Json {
    let mut paths: Map<String, Json> = Map::new();
    for (route, _) in super::routes() {
        let params: Vec<Json> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut responses = Map::new();
        let ok = if route.method == axum::http::Method::POST {
            "2XX"
        } else {
            "200"
        };
        responses.insert(
            ok.into(),
            json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
        let mut errors = vec!["400", "404", "422"];
        if route.role.is_some() {
            errors.extend(["401", "403"]);
        }
        if route.body.is_some() {
            errors.push("415");
        }
        for code in errors {
            responses.insert(code.into(), json!({"$ref": "#/components/responses/Error"}));
        }
        let mut op = json!({
            "summary": route.summary,
            "tags": [route.group],
            "operationId": operation_id(&route),
            "parameters": params,
            "responses": responses,
        });
        match route.role {
            Some(role) => {
                op["security"] = json!([{"bearer": []}]);
                op["x-funnel-role"] = json!(role.as_str());
            }
            None => op["security"] = json!([]),
        }
        if let Some(schema) = route.body {
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema()}}
            });
        }
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "funnel daemon API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The workspace's templates, components, workflows, CRM, automation and analytics. Send `Authorization: Bearer <token>` (`funnel tokens create`); each operation names the role it needs in `x-funnel-role` (viewer < editor < owner)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "examples": ["not_found"]},
                            "message": {"type": "string"},
                            "field": {"type": "string", "description": "The request field at fault, when one is."}
                        }
                    }}
                }
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}

/// `get_api_crm_contacts_id`, unique per method and path.
fn operation_id(route: &super::Route) -> String {
    let mut id = route.method.as_str().to_ascii_lowercase();
    for seg in route.path.split('/').filter(|s| !s.is_empty()) {
        id.push('_');
        id.push_str(
            &seg.trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_"),
        );
    }
    id
}

pub async fn serve() -> Response {
    axum::Json(document()).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_once() {
        let doc = super::document();
        let mut seen = std::collections::BTreeSet::new();
        for (route, _) in super::super::routes() {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{} {} undocumented",
                route.method,
                route.path
            );
            assert!(seen.insert(op["operationId"].to_string()), "{op}");
        }
    }

    #[test]
    fn bodies_are_documented_with_their_fields() {
        let doc = super::document();
        let body = |path: &str, method: &str| {
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
                .clone()
        };
        let contact = body("/api/crm/contacts", "post");
        assert_eq!(
            contact["required"],
            serde_json::json!(["email"]),
            "{contact}"
        );
        assert_eq!(
            contact["additionalProperties"], false,
            "unknown fields are refused"
        );
        assert!(
            contact["properties"]["custom_fields"].is_object(),
            "{contact}"
        );
        let add = body("/api/sites/{site}/components", "post");
        let mut required: Vec<String> =
            serde_json::from_value(add["required"].clone()).unwrap_or_default();
        required.sort();
        assert_eq!(required, ["component", "id", "page"], "{add}");
        assert!(body("/api/workflows/{id}", "put")["properties"]["yaml"].is_object());
        // Routes that read nothing document no body.
        assert!(doc["paths"]["/api/proposals/{id}/approve"]["post"]["requestBody"].is_null());
        // Every part is inline: no reference points outside the document's own.
        let text = doc.to_string();
        assert!(
            !text.contains("#/$defs") && !text.contains("#/definitions"),
            "{text}"
        );
    }
}
