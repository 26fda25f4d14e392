//! References between files: workflows to sites, components, email templates, lists,
//! pipelines and other workflows; tests to workflows; segments and scoring rules to
//! lists, segments, fields and email templates.

use crate::diagnostic::{Code, Diagnostic, did_you_mean, suggest};
use crate::model::FileKind;
use crate::model::contacts::Condition;
use crate::model::step::{OnError, OnErrorHandler, StepKind};
use crate::model::workflow::TriggerKind;
use crate::validate::graph::flatten;
use crate::validate::sites::site_instances;
use crate::validate::{Located, join};
use crate::workspace::Workspace;
use crate::yaml::Seg;

/// Built-in contact fields, usable wherever a field name is.
pub const CONTACT_FIELDS: &[&str] = &[
    "id",
    "email",
    "name",
    "first_name",
    "last_name",
    "phone",
    "tags",
    "score",
    "status",
    "stage",
    "source",
    "created_at",
    "last_activity",
    "lists",
    "fields",
];

pub fn check(ws: &Workspace, out: &mut Vec<Diagnostic>) {
    let r = Refs { ws };
    for doc in ws.email_templates.values() {
        if let Some(layout) = &doc.value.layout {
            let at = Located::of(ws, doc);
            r.id(
                FileKind::EmailLayout,
                layout,
                &at,
                &crate::path!["layout"],
                out,
            );
        }
    }
    for doc in ws.email_layouts.values() {
        let places = |t: &str| {
            t.split("{{")
                .skip(1)
                .any(|s| s.split("}}").next().is_some_and(|e| e.trim() == "content"))
        };
        if !places(doc.value.html.as_str()) {
            let at = Located::of(ws, doc);
            out.push(
                at.error(
                    Code::MissingKey,
                    &crate::path!["html"],
                    "the layout does not place its email: `{{ content }}` is missing",
                )
                .with_help("put `{{ content }}` where the email's HTML goes"),
            );
        }
    }
    for doc in ws.campaigns.values() {
        let at = Located::of(ws, doc);
        let c = &doc.value;
        r.id(
            FileKind::EmailTemplate,
            c.template.as_str(),
            &at,
            &crate::path!["template"],
            out,
        );
        if let Some(s) = &c.audience.segment {
            r.segment(s.as_str(), &at, &crate::path!["audience", "segment"], out);
        }
        if let Some(l) = &c.audience.list {
            r.list(l.as_str(), &at, &crate::path!["audience", "list"], out);
        }
        for (i, v) in c.ab_test.iter().flat_map(|t| t.variants.iter().enumerate()) {
            if let Some(t) = &v.template {
                let path = crate::path!["ab_test", "variants", i, "template"];
                r.id(FileKind::EmailTemplate, t.as_str(), &at, &path, out);
            }
        }
    }
    for doc in ws.workflows.values() {
        let at = Located::of(ws, doc);
        r.trigger(&doc.value.trigger.kind, &at, out);
        if let Some(e) = &doc.value.error_workflow {
            r.id(
                FileKind::Workflow,
                e.as_str(),
                &at,
                &crate::path!["error_workflow"],
                out,
            );
        }
        for s in flatten(&doc.value) {
            r.step(&s.step.kind, &s.path, &at, out);
            if let Some(OnError::Handler(OnErrorHandler::Workflow(w))) = &s.step.on_error {
                let p = join(&s.path, [Seg::from("on_error"), Seg::from("workflow")]);
                r.id(FileKind::Workflow, w.as_str(), &at, &p, out);
            }
        }
    }
    for doc in &ws.workflow_tests {
        let at = Located::of(ws, doc);
        let wf_id = doc.value.workflow.as_str();
        if !r.id(
            FileKind::Workflow,
            wf_id,
            &at,
            &crate::path!["workflow"],
            out,
        ) {
            continue;
        }
        let steps: Vec<String> = ws
            .workflows
            .get(wf_id)
            .map(|w| {
                flatten(&w.value)
                    .iter()
                    .map(|s| s.step.id.0.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (i, case) in doc.value.cases.iter().enumerate() {
            if let Some(path) = &case.expect.path {
                for (j, id) in path.iter().enumerate() {
                    if !steps.is_empty() && !steps.contains(&id.0) {
                        out.push(
                            at.error(
                                Code::UnknownStep,
                                &crate::path!["cases", i, "expect", "path", j],
                                format!("workflow `{wf_id}` has no step `{id}`"),
                            )
                            .maybe_help(did_you_mean(&id.0, steps.iter().map(String::as_str))),
                        );
                    }
                }
            }
            for (j, email) in case.expect.emails.iter().flatten().enumerate() {
                let p = crate::path!["cases", i, "expect", "emails", j, "template"];
                r.id(
                    FileKind::EmailTemplate,
                    email.template.as_str(),
                    &at,
                    &p,
                    out,
                );
            }
            if let Some(contact) = &case.expect.contact {
                for (j, list) in contact.lists.iter().flatten().enumerate() {
                    let p = crate::path!["cases", i, "expect", "contact", "lists", j];
                    r.list(list.as_str(), &at, &p, out);
                }
            }
        }
    }
    if let Some(doc) = &ws.segments {
        let at = Located::of(ws, doc);
        for (id, seg) in &doc.value.segments {
            let p = crate::path!["segments", id.as_str(), "match"];
            r.condition(&seg.matches, &p, &at, Some(id.as_str()), out);
        }
        segment_cycles(&doc.value, &at, out);
    }
    if let Some(doc) = &ws.scoring {
        let at = Located::of(ws, doc);
        for (i, rule) in doc.value.fit.iter().enumerate() {
            r.condition(&rule.when, &crate::path!["fit", i, "when"], &at, None, out);
        }
    }
}

/// Segments that include each other (`a` uses `b`, `b` uses `a`) can never be
/// computed; a self-reference is reported where the conditions are checked.
fn segment_cycles(
    file: &crate::model::contacts::SegmentsFile,
    at: &Located,
    out: &mut Vec<Diagnostic>,
) {
    use std::collections::BTreeMap;
    let mut edges: BTreeMap<&str, Vec<(String, Vec<Seg>)>> = BTreeMap::new();
    for (id, seg) in &file.segments {
        let mut refs = Vec::new();
        segment_refs(
            &seg.matches,
            &crate::path!["segments", id.as_str(), "match"],
            &mut refs,
        );
        refs.retain(|(target, _)| target != id && file.segments.contains_key(target));
        edges.insert(id.as_str(), refs);
    }
    // Colors: 0 unseen, 1 on the current path, 2 done.
    let mut color: BTreeMap<&str, u8> = BTreeMap::new();
    for start in edges.keys().copied() {
        if color.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        color.insert(start, 1);
        while let Some((node, i)) = stack.pop() {
            let Some((target, path)) = edges.get(node).and_then(|e| e.get(i)) else {
                color.insert(node, 2);
                continue;
            };
            stack.push((node, i + 1));
            match color.get(target.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some((key, _)) = edges.get_key_value(target.as_str()) {
                        color.insert(key, 1);
                        stack.push((key, 0));
                    }
                }
                1 => out.push(
                    at.error(
                        Code::InvalidReference,
                        path,
                        format!("segments `{node}` and `{target}` include each other"),
                    )
                    .with_help("a segment cannot depend on itself, directly or through others"),
                ),
                _ => {}
            }
        }
    }
}

fn segment_refs(c: &Condition, base: &[Seg], out: &mut Vec<(String, Vec<Seg>)>) {
    leaves(c, base, &mut |leaf, path| {
        if let Condition::Segment(id) = leaf {
            out.push((id.0.clone(), join(path, [Seg::from("segment")])));
        }
    });
}

/// Calls `f` with every condition that is not `all`, `any` or `not`, and its path.
fn leaves(c: &Condition, base: &[Seg], f: &mut dyn FnMut(&Condition, &[Seg])) {
    match c {
        Condition::All(items) | Condition::Any(items) => {
            let key = if matches!(c, Condition::All(_)) {
                "all"
            } else {
                "any"
            };
            for (i, item) in items.iter().enumerate() {
                leaves(item, &join(base, [Seg::from(key), Seg::Index(i)]), f);
            }
        }
        Condition::Not(inner) => leaves(inner, &join(base, [Seg::from("not")]), f),
        leaf => f(leaf, base),
    }
}

/// Reports `id` unless `ids` (the keys of a contacts file) holds it. Without the
/// file, the reference is unknown; with a file that failed to load, nothing is said.
fn defined<'k>(
    id: &str,
    ids: Option<impl Iterator<Item = &'k String> + Clone>,
    file_known: bool,
    (code, what, file): (Code, &str, &str),
    at: &Located,
    path: &[Seg],
    out: &mut Vec<Diagnostic>,
) {
    match ids {
        Some(ids) if ids.clone().any(|k| k == id) => {}
        Some(ids) => out.push(
            at.error(code, path, format!("no {what} `{id}` in {file}"))
                .maybe_help(did_you_mean(id, ids.map(String::as_str))),
        ),
        None if file_known => {}
        None => out.push(
            at.error(code, path, format!("no {what} `{id}`"))
                .with_help(format!(
                    "{what}s are defined in {file}, which this workspace lacks"
                )),
        ),
    }
}

struct Refs<'a> {
    ws: &'a Workspace,
}

impl Refs<'_> {
    /// Reports `id` when no file of `kind` has it; returns whether it exists.
    fn id(
        &self,
        kind: FileKind,
        id: &str,
        at: &Located,
        path: &[Seg],
        out: &mut Vec<Diagnostic>,
    ) -> bool {
        if self.ws.knows(kind, id) {
            return true;
        }
        let (code, what, place) = match kind {
            FileKind::Workflow => (Code::UnknownWorkflow, "workflow", "workflows/<id>.yaml"),
            FileKind::EmailTemplate => (
                Code::UnknownEmailTemplate,
                "email template",
                "templates/emails/<id>.yaml",
            ),
            FileKind::EmailLayout => (
                Code::UnknownEmailTemplate,
                "email layout",
                "templates/emails/layouts/<id>.yaml",
            ),
            FileKind::Site => (Code::UnknownSite, "site", "sites/<id>/site.yaml"),
            FileKind::SiteTemplate => (
                Code::UnknownTemplate,
                "site template",
                "templates/sites/<id>/template.yaml",
            ),
            _ => (
                Code::UnknownComponent,
                "component",
                "templates/components/<id>/component.yaml",
            ),
        };
        let help = did_you_mean(id, self.ws.ids(kind))
            .unwrap_or_else(|| format!("a {what} is defined by {place}"));
        out.push(
            at.error(code, path, format!("no {what} `{id}`"))
                .with_help(help),
        );
        false
    }

    fn list(&self, id: &str, at: &Located, path: &[Seg], out: &mut Vec<Diagnostic>) {
        let ids = self.ws.lists.as_ref().map(|d| d.value.lists.keys());
        let known = self.ws.knows(FileKind::Lists, "lists");
        defined(
            id,
            ids,
            known,
            (Code::UnknownList, "list", "contacts/lists.yaml"),
            at,
            path,
            out,
        );
    }

    fn segment(&self, id: &str, at: &Located, path: &[Seg], out: &mut Vec<Diagnostic>) {
        let ids = self.ws.segments.as_ref().map(|d| d.value.segments.keys());
        let known = self.ws.knows(FileKind::Segments, "segments");
        let what = (Code::UnknownSegment, "segment", "contacts/segments.yaml");
        defined(id, ids, known, what, at, path, out);
    }

    /// A custom or built-in contact field name.
    pub fn field(&self, name: &str, at: &Located, path: &[Seg], out: &mut Vec<Diagnostic>) {
        if CONTACT_FIELDS.contains(&name) {
            return;
        }
        let custom = name.strip_prefix("fields.").unwrap_or(name);
        match &self.ws.fields {
            Some(f) if f.value.fields.contains_key(custom) => {}
            Some(f) => out.push(
                at.error(
                    Code::UnknownField,
                    path,
                    format!("no contact field `{custom}`"),
                )
                .maybe_help(
                    did_you_mean(
                        custom,
                        f.value
                            .fields
                            .keys()
                            .map(String::as_str)
                            .chain(CONTACT_FIELDS.iter().copied()),
                    )
                    .or_else(|| Some("custom fields are defined in contacts/fields.yaml".into())),
                ),
            ),
            None if self.ws.knows(FileKind::Fields, "fields") => {}
            None => out.push(
                at.error(
                    Code::UnknownField,
                    path,
                    format!("no contact field `{custom}`"),
                )
                .with_help(
                    "custom fields are defined in contacts/fields.yaml, which this workspace lacks",
                ),
            ),
        }
    }

    fn pipeline_stage(
        &self,
        pipeline: &str,
        stage: Option<&str>,
        at: &Located,
        base: &[Seg],
        out: &mut Vec<Diagnostic>,
    ) {
        let Some(doc) = &self.ws.pipelines else {
            if !self.ws.knows(FileKind::Pipelines, "pipelines") {
                out.push(
                    at.error(
                        Code::UnknownPipeline,
                        &join(base, [Seg::from("pipeline")]),
                        format!("no pipeline `{pipeline}`"),
                    )
                    .with_help("define pipelines in contacts/pipelines.yaml"),
                );
            }
            return;
        };
        let Some((_, def)) = doc
            .value
            .pipelines
            .iter()
            .find(|(k, _)| k.as_str() == pipeline)
        else {
            out.push(
                at.error(
                    Code::UnknownPipeline,
                    &join(base, [Seg::from("pipeline")]),
                    format!("no pipeline `{pipeline}` in contacts/pipelines.yaml"),
                )
                .maybe_help(did_you_mean(
                    pipeline,
                    doc.value.pipelines.keys().map(|k| k.as_str()),
                )),
            );
            return;
        };
        if let Some(stage) = stage
            && !def.stages.iter().any(|s| s.id.as_str() == stage)
        {
            let names: Vec<&str> = def.stages.iter().map(|s| s.id.as_str()).collect();
            out.push(
                at.error(
                    Code::UnknownStage,
                    &join(base, [Seg::from("stage")]),
                    format!("pipeline `{pipeline}` has no stage `{stage}`"),
                )
                .with_help(suggest(stage, &names, "its stages")),
            );
        }
    }

    fn trigger(&self, kind: &TriggerKind, at: &Located, out: &mut Vec<Diagnostic>) {
        let t = |k: &str| crate::path!["trigger", k];
        match kind {
            TriggerKind::FormSubmission { site, component }
                if self.id(FileKind::Site, site.as_str(), at, &t("site"), out) =>
            {
                self.instance(
                    site.as_str(),
                    component.as_str(),
                    true,
                    at,
                    &t("component"),
                    out,
                );
            }
            TriggerKind::PageEvent {
                site: Some(site),
                component,
                page,
                ..
            } if self.id(FileKind::Site, site.as_str(), at, &t("site"), out) => {
                if let Some(c) = component {
                    self.instance(site.as_str(), c.as_str(), false, at, &t("component"), out);
                }
                if let Some(page) = page {
                    self.page(site.as_str(), page, at, &t("page"), out);
                }
            }
            TriggerKind::FieldChanged { field, .. } => self.field(field, at, &t("field"), out),
            TriggerKind::ListJoined { list } => {
                self.list(list.as_str(), at, &t("list"), out);
            }
            TriggerKind::DealStageChanged { pipeline, stage } => self.pipeline_stage(
                pipeline.as_str(),
                stage.as_ref().map(|s| s.as_str()),
                at,
                &crate::path!["trigger"],
                out,
            ),
            TriggerKind::EmailOpened {
                template: Some(tpl),
            }
            | TriggerKind::EmailClicked {
                template: Some(tpl),
                ..
            }
            | TriggerKind::EmailBounced {
                template: Some(tpl),
            }
            | TriggerKind::EmailUnsubscribed {
                template: Some(tpl),
            } => {
                self.id(
                    FileKind::EmailTemplate,
                    tpl.as_str(),
                    at,
                    &t("template"),
                    out,
                );
            }
            _ => {}
        }
    }

    /// A page path of a site (its template's pages and its own).
    fn page(&self, site: &str, page: &str, at: &Located, path: &[Seg], out: &mut Vec<Diagnostic>) {
        let Some(pages) = crate::validate::sites::site_pages(self.ws, site) else {
            return;
        };
        if !pages.iter().any(|(p, _, _)| p.path == page) {
            let paths: Vec<&str> = pages.iter().map(|(p, _, _)| p.path.as_str()).collect();
            out.push(
                at.error(
                    Code::UnknownPage,
                    path,
                    format!("site `{site}` has no page `{page}`"),
                )
                .with_help(suggest(page, &paths, "its pages")),
            );
        }
    }

    /// A component instance of a site, and for forms, that it submits.
    fn instance(
        &self,
        site: &str,
        id: &str,
        form: bool,
        at: &Located,
        path: &[Seg],
        out: &mut Vec<Diagnostic>,
    ) {
        let Some(instances) = site_instances(self.ws, site) else {
            return;
        };
        let Some(inst) = instances.iter().find(|i| i.instance.id.as_str() == id) else {
            let ids: Vec<&str> = instances.iter().map(|i| i.instance.id.as_str()).collect();
            out.push(
                at.error(
                    Code::UnknownComponent,
                    path,
                    format!("site `{site}` has no component instance `{id}`"),
                )
                .with_help(suggest(id, &ids, "its instances")),
            );
            return;
        };
        if form {
            let component = inst.instance.component.as_str();
            let submits = self.ws.components.get(component).is_none_or(|c| {
                c.value
                    .events
                    .contains(&crate::model::component::ComponentEvent::Submit)
            });
            if !submits {
                out.push(
                    at.error(
                        Code::InvalidReference,
                        path,
                        format!("`{id}` is a `{component}` component, which is not a form"),
                    )
                    .with_help("form triggers name an instance of a component that emits `submit`"),
                );
            }
        }
    }

    fn step(&self, kind: &StepKind, base: &[Seg], at: &Located, out: &mut Vec<Diagnostic>) {
        let p = |k: &str| join(base, [Seg::from(k)]);
        match kind {
            StepKind::SendEmail { template, .. } => {
                self.id(
                    FileKind::EmailTemplate,
                    template.as_str(),
                    at,
                    &p("template"),
                    out,
                );
            }
            StepKind::UpsertContact { fields, lists, .. } => {
                for name in fields.keys() {
                    let path = join(base, [Seg::from("fields"), Seg::from(name)]);
                    self.custom_field_key(name, at, &path, out);
                }
                for (i, list) in lists.iter().enumerate() {
                    self.list(
                        list.as_str(),
                        at,
                        &join(base, [Seg::from("lists"), Seg::Index(i)]),
                        out,
                    );
                }
            }
            StepKind::UpdateContact { fields } => {
                for name in fields.keys() {
                    let path = join(base, [Seg::from("fields"), Seg::from(name)]);
                    self.custom_field_key(name, at, &path, out);
                }
            }
            StepKind::AddToList { list } | StepKind::RemoveFromList { list } => {
                self.list(list.as_str(), at, &p("list"), out);
            }
            StepKind::MoveDeal {
                pipeline, stage, ..
            } => {
                self.pipeline_stage(pipeline.as_str(), Some(stage.as_str()), at, base, out);
            }
            StepKind::SubWorkflow { workflow, .. } => {
                self.id(
                    FileKind::Workflow,
                    workflow.as_str(),
                    at,
                    &p("workflow"),
                    out,
                );
            }
            _ => {}
        }
    }

    /// A key of a `fields:` map: a custom field (reported at the key).
    fn custom_field_key(&self, name: &str, at: &Located, path: &[Seg], out: &mut Vec<Diagnostic>) {
        let defined = match &self.ws.fields {
            Some(f) => f
                .value
                .fields
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            None if self.ws.knows(FileKind::Fields, "fields") => return,
            None => Vec::new(),
        };
        if !defined.contains(&name) {
            out.push(
                Diagnostic::error(
                    Code::UnknownField,
                    at.file,
                    at.key_span(path),
                    format!("no custom field `{name}` in contacts/fields.yaml"),
                )
                .maybe_help(did_you_mean(name, defined.iter().copied())),
            );
        }
    }

    fn condition(
        &self,
        c: &Condition,
        base: &[Seg],
        at: &Located,
        own: Option<&str>,
        out: &mut Vec<Diagnostic>,
    ) {
        leaves(c, base, &mut |leaf, path| {
            self.leaf(leaf, path, at, own, out)
        });
    }

    fn leaf(
        &self,
        c: &Condition,
        base: &[Seg],
        at: &Located,
        own: Option<&str>,
        out: &mut Vec<Diagnostic>,
    ) {
        match c {
            Condition::Field(f) => {
                self.field(
                    &f.name,
                    at,
                    &join(base, [Seg::from("field"), Seg::from("name")]),
                    out,
                );
                let ops = [
                    f.eq.is_some(),
                    f.ne.is_some(),
                    f.gt.is_some(),
                    f.gte.is_some(),
                    f.lt.is_some(),
                    f.lte.is_some(),
                    f.one_of.is_some(),
                    f.contains.is_some(),
                    f.exists.is_some(),
                ];
                match ops.iter().filter(|o| **o).count() {
                    0 => out.push(
                        at.error(
                            Code::MissingKey,
                            &join(base, [Seg::from("field")]),
                            "a field condition needs an operator",
                        )
                        .with_help("add one of: eq, ne, gt, gte, lt, lte, in, contains, exists"),
                    ),
                    1 => {}
                    _ => out.push(
                        at.error(
                            Code::InvalidValue,
                            &join(base, [Seg::from("field")]),
                            "a field condition takes exactly one operator",
                        )
                        .with_help("write one condition per operator under `all:`"),
                    ),
                }
            }
            Condition::List(id) => {
                self.list(id.as_str(), at, &join(base, [Seg::from("list")]), out)
            }
            Condition::Segment(id) => {
                let path = join(base, [Seg::from("segment")]);
                if own == Some(id.as_str()) {
                    out.push(at.error(
                        Code::InvalidReference,
                        &path,
                        format!("segment `{id}` refers to itself"),
                    ));
                } else {
                    self.segment(id.as_str(), at, &path, out);
                }
            }
            Condition::Email(e) => {
                if let Some(t) = &e.template {
                    let path = join(base, [Seg::from("email"), Seg::from("template")]);
                    self.id(FileKind::EmailTemplate, t.as_str(), at, &path, out);
                }
            }
            _ => {}
        }
    }
}
