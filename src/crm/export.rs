//! CSV export of contacts in funnel's own layout (which `contacts import` reads
//! back) and in HubSpot's and Mailchimp's import layouts. Streams in pages of ids,
//! so a million contacts take no more memory than a thousand.

use std::io::Write;

use crate::store::db::Db;

use super::CrmError;
use super::contact;
use super::directory;
use super::scoring::Scoring;
use crate::model::contacts::Condition;
use crate::store::UnixMs;

/// Whose import layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// email, name, first_name, last_name, phone, status, stage, score, tags,
    /// lists, created_at and every custom field.
    Funnel,
    /// HubSpot's contact import: Email, First Name, Last Name, Phone Number,
    /// Company Name, Lifecycle Stage, then custom fields by their names.
    Hubspot,
    /// Mailchimp's audience import: Email Address, First Name, Last Name, Phone
    /// Number, Tags. Only active contacts: Mailchimp takes every imported row as
    /// permission to send.
    Mailchimp,
}

const PAGE: usize = 1_000;

/// Writes the contacts meeting `filter` as CSV; returns how many.
pub fn write_csv(
    conn: Db<'_>,
    scoring: &Scoring,
    filter: Option<&Condition>,
    layout: Layout,
    fields: &[String],
    out: impl Write,
    now: UnixMs,
) -> Result<u64, CrmError> {
    let mut w = csv::Writer::from_writer(out);
    let mut header: Vec<String> = match layout {
        Layout::Funnel => [
            "email",
            "name",
            "first_name",
            "last_name",
            "phone",
            "status",
            "stage",
            "score",
            "tags",
            "lists",
            "created_at",
        ]
        .map(String::from)
        .to_vec(),
        Layout::Hubspot => [
            "Email",
            "First Name",
            "Last Name",
            "Phone Number",
            "Company Name",
            "Lifecycle Stage",
        ]
        .map(String::from)
        .to_vec(),
        Layout::Mailchimp => [
            "Email Address",
            "First Name",
            "Last Name",
            "Phone Number",
            "Tags",
        ]
        .map(String::from)
        .to_vec(),
    };
    if layout != Layout::Mailchimp {
        header.extend(fields.iter().cloned());
    }
    w.write_record(&header).map_err(io)?;
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = directory::list(conn, scoring, filter, now, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for s in &page {
            if layout == Layout::Mailchimp && s.status != "active" {
                continue;
            }
            let view = contact::view(conn, s.id, scoring, now)?;
            let text = |k: &str| {
                view.get(k)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                    .unwrap_or_default()
            };
            let joined = |k: &str| {
                view.get(k)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(";")
                    })
                    .unwrap_or_default()
            };
            let field = |f: &str| {
                view.pointer(&format!("/fields/{f}"))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                    .unwrap_or_default()
            };
            let mut row: Vec<String> = match layout {
                Layout::Funnel => vec![
                    text("email"),
                    text("name"),
                    text("first_name"),
                    text("last_name"),
                    text("phone"),
                    text("status"),
                    text("stage"),
                    view.get("score")
                        .and_then(|v| v.as_f64())
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_default(),
                    joined("tags"),
                    joined("lists"),
                    jiff::Timestamp::from_millisecond(s.created_at)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                ],
                Layout::Hubspot => vec![
                    text("email"),
                    text("first_name"),
                    text("last_name"),
                    text("phone"),
                    field("company"),
                    hubspot_stage(view.get("stage").and_then(|v| v.as_str())),
                ],
                Layout::Mailchimp => vec![
                    text("email"),
                    text("first_name"),
                    text("last_name"),
                    text("phone"),
                    // Mailchimp separates tags by commas inside the cell.
                    joined("tags").replace(';', ","),
                ],
            };
            if layout != Layout::Mailchimp {
                row.extend(fields.iter().map(|f| field(f)));
            }
            w.write_record(&row).map_err(io)?;
            n += 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    w.flush().map_err(|e| CrmError::Io(e.to_string()))?;
    Ok(n)
}

/// HubSpot's internal lifecycle stage values.
fn hubspot_stage(stage: Option<&str>) -> String {
    match stage {
        Some("marketing_qualified") => "marketingqualifiedlead".into(),
        Some("sales_qualified") => "salesqualifiedlead".into(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn io(e: csv::Error) -> CrmError {
    CrmError::Io(e.to_string())
}
