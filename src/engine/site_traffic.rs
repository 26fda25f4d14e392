//! What a published site sends in, each as one engine transaction: a form post
//! (the visitor, the `form_submission` event, the conversion, the contact tied
//! to the day's visitor and a signed token for the thank-you page) and a tracking
//! beacon (the raw event, its rollups, and a `page_event` for known visitors).
//! The HTTP shells (`web`, later the daemon) parse and answer; this owns the
//! writes, so that tests and benchmarks run the same statements.

use serde_json::{Map, Value as Json, json};

use super::EngineError;
use super::ingest::{Event, ingest};
use super::run::Ctx;
use crate::analytics::{self, Beacon, token};
use crate::crm::{attribution, contact};
use crate::store::NewActivity;
use crate::store::db::params;

/// A form post, parsed and checked by the HTTP side.
#[derive(Debug, Clone, Default)]
pub struct FormPost {
    pub site: String,
    /// The form's component instance.
    pub instance: String,
    /// The page it was posted from.
    pub page: String,
    pub fields: Map<String, Json>,
    /// UTM parameters of the page it was posted from.
    pub utm: Map<String, Json>,
    /// The normalized email field, if the form has one.
    pub email: Option<String>,
    /// The client's address and browser, for the day's visitor hash.
    pub address: String,
    pub user_agent: String,
}

/// What a form post did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormOutcome {
    /// The contact the post is about, and whether the post created it.
    pub contact: Option<(i64, bool)>,
    /// A signed token for the redirect, tying the thank-you page's visit.
    pub token: Option<String>,
    /// Executions the post started (workflow ids, in order).
    pub started: Vec<String>,
}

/// Records a form post and ingests it as a `form_submission`.
pub fn form_post(ctx: &mut Ctx<'_>, post: FormPost) -> Result<FormOutcome, EngineError> {
    let FormPost {
        site,
        instance,
        page,
        fields,
        utm,
        email,
        address,
        user_agent,
    } = post;
    let visitor = analytics::visitor(ctx.conn, &site, &address, &user_agent, ctx.now)?;
    let mut data = json!({
        "site": site,
        "component": instance,
        "page": page,
        "fields": fields,
        "visitor": visitor,
    });
    if !utm.is_empty() {
        data["utm"] = Json::Object(utm);
    }
    let ingested = ingest(
        ctx,
        Event {
            kind: "form_submission".into(),
            data,
            ..Event::default()
        },
    )?;
    let started = ingested.workflows;
    // Only the submission's own contact: an address the form did not send is
    // never looked up (a suppressed person's post resolves to none).
    let (contact_id, created) = match ingested.contact {
        Some((id, created)) if email.is_some() => (Some(id), created),
        _ => (None, false),
    };
    analytics::record_conversion(
        ctx.conn, &site, &page, &instance, &visitor, contact_id, ctx.now,
    )?;
    let Some(id) = contact_id else {
        return Ok(FormOutcome {
            started,
            ..FormOutcome::default()
        });
    };
    tie_visitor(ctx, &site, &visitor, id)?;
    let uid: String = ctx
        .conn
        .prepare_cached("SELECT uid FROM contacts WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))?;
    let key = token::key(ctx.conn)?;
    Ok(FormOutcome {
        contact: Some((id, created)),
        token: Some(token::issue(&key, &uid, ctx.now)),
        started,
    })
}

/// Records a tracking beacon from `address` and `user_agent`: a valid token
/// ties the day's visitor to its contact; a known visitor's event is ingested
/// as a `page_event`.
pub fn beacon(
    ctx: &mut Ctx<'_>,
    b: &Beacon,
    address: &str,
    user_agent: &str,
) -> Result<(), EngineError> {
    let visitor = analytics::visitor(ctx.conn, &b.site, address, user_agent, ctx.now)?;
    let mut contact_id = None;
    if let Some(t) = &b.token {
        let key = token::key(ctx.conn)?;
        if let Some(uid) = token::verify(&key, t, ctx.now)
            && let Ok(id) = contact::resolve(ctx.conn, &uid)
        {
            tie_visitor(ctx, &b.site, &visitor, id)?;
            contact_id = Some(id);
        }
    }
    if contact_id.is_none() {
        contact_id = analytics::contact_of_visitor(ctx.conn, &b.site, &visitor, ctx.now)?;
    }
    analytics::record(ctx.conn, b, &visitor, contact_id, ctx.now)?;
    let mut data = b.trigger_data();
    data["visitor"] = json!(visitor);
    ingest(
        ctx,
        Event {
            kind: "page_event".into(),
            data,
            contact_id,
            ..Event::default()
        },
    )?;
    Ok(())
}

/// Ties today's visitor to the contact and puts the visitor's earlier page views
/// of the day on the contact's timeline (and into its first and last touch).
pub fn tie_visitor(
    ctx: &mut Ctx<'_>,
    site: &str,
    visitor: &str,
    contact_id: i64,
) -> Result<(), EngineError> {
    for (at, data) in analytics::tie(ctx.conn, site, visitor, contact_id, ctx.now)? {
        let activity = NewActivity {
            contact_id,
            kind: "page_view".into(),
            subject: data.get("page").and_then(Json::as_str).map(String::from),
            data: data.clone(),
            source: Some(site.to_string()),
            occurred_at: at,
        };
        let (_, events) = contact::add_activity(ctx.conn, &activity, &ctx.engine.scoring)?;
        ctx.fx.events.extend(events);
        attribution::record_touch(
            ctx.conn,
            contact_id,
            &attribution::Touch::from_event("page_view", &data, at),
        )?;
    }
    Ok(())
}
