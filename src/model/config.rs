//! `funnel.yaml`: the workspace's own settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::{DurationText, EmailAddress, Secret, TimeZoneName, Url};

/// Workspace settings: identity, public address, store, email and defaults.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    /// The workspace's display name.
    pub name: String,
    /// Where the daemon is reachable from the internet; forms post and tracking
    /// reports go here, e.g. `https://go.example.com`.
    pub public_url: Url,
    /// Default time zone for schedules and reports (IANA name).
    #[serde(default)]
    pub timezone: Option<TimeZoneName>,
    /// Where run-time state lives. Defaults to SQLite at `.funnel/funnel.db`.
    #[serde(default)]
    pub store: Option<StoreConfig>,
    /// How email is sent.
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// Defaults applied where a file says nothing.
    #[serde(default)]
    pub defaults: Option<Defaults>,
    /// Where outgoing calls (`http`, `slack`, `discord`, `social_post` steps) may go.
    #[serde(default)]
    pub network: Option<NetworkConfig>,
    /// How the daemon (`funnel up`, `funnel daemon`) takes requests.
    #[serde(default)]
    pub daemon: Option<DaemonConfig>,
    /// A language model for workflow drafts (`funnel suggest --model`).
    #[serde(default)]
    pub ai: Option<AiConfig>,
    /// Funnels and attribution for `funnel analytics`.
    #[serde(default)]
    pub analytics: Option<AnalyticsConfig>,
}

/// Funnels and attribution.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsConfig {
    /// How long before a conversion a touch is credited (default `30d`).
    #[serde(default)]
    pub attribution_window: Option<DurationText>,
    /// Funnels by id: ordered steps a contact goes through.
    #[serde(default)]
    pub funnels: std::collections::BTreeMap<String, FunnelDef>,
}

/// A funnel: contacts who do the first step, then the next, in order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FunnelDef {
    /// A title for reports (default: the funnel's id).
    #[serde(default)]
    pub name: Option<String>,
    /// At most this long from the first step to the last (default: no limit).
    #[serde(default)]
    pub within: Option<DurationText>,
    /// Two or more steps, in order.
    pub steps: Vec<FunnelStep>,
}

/// One step of a funnel: the first such event of the contact at or after the
/// previous step's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FunnelStep {
    /// A page view (of `page`, or any page of the site).
    PageView {
        site: super::scalar::Ident,
        #[serde(default)]
        page: Option<String>,
    },
    /// A component's view, click or submit.
    ComponentEvent {
        site: super::scalar::Ident,
        component: super::scalar::Ident,
        event: super::component::ComponentEvent,
    },
    /// A form post of a site's form component.
    FormPost {
        site: super::scalar::Ident,
        component: super::scalar::Ident,
    },
    /// An email opened (of `template`, or any).
    EmailOpened {
        #[serde(default)]
        template: Option<super::scalar::Ident>,
    },
    /// A link clicked in an email (of `template`, or any).
    EmailClicked {
        #[serde(default)]
        template: Option<super::scalar::Ident>,
    },
    /// An activity on the contact's timeline, by type (`form_submit`, `call`…).
    Activity {
        #[serde(rename = "type")]
        kind: String,
    },
    /// A deal of the pipeline moved to the stage.
    DealStage {
        pipeline: super::scalar::Ident,
        stage: super::scalar::Ident,
    },
}

/// An optional language model for `funnel suggest --model`: any
/// OpenAI-compatible chat completions API (a local llama.cpp or Ollama server,
/// or a hosted one). Its answers are validated like any other edit.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AiConfig {
    /// The API's base URL, to which `/chat/completions` is added, e.g.
    /// `http://127.0.0.1:11434/v1` (Ollama) or `https://api.openai.com/v1`. A
    /// local or private address must also be in `network.allow`.
    pub endpoint: Url,
    /// The model's name at that endpoint.
    pub model: String,
    /// The API key, as `${ENV}`; sent as a bearer token.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// How long an answer may take (default `120s`).
    #[serde(default)]
    pub timeout: Option<DurationText>,
}

/// The daemon's public endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Addresses and ranges (`10.0.0.0/8`) of the proxies in front of the daemon:
    /// only their `X-Forwarded-For` is believed for a client's address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Form posts per client address and minute (default 30); 0 turns the limit off.
    #[serde(default)]
    pub form_rate_limit: Option<u32>,
    /// HTTPS for every site with a `domain`: certificates over ACME, kept in
    /// the store and renewed by the daemon (`funnel daemon --https-bind`).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// Certificates over ACME (RFC 8555) for the sites' domains.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The ACME directory, e.g. Let's Encrypt's
    /// `https://acme-v02.api.letsencrypt.org/directory`.
    pub acme_directory: Url,
    /// Who the certificate authority writes to about the account (expiry, policy).
    #[serde(default)]
    pub contact: Option<EmailAddress>,
    /// A PEM file holding the only root to trust for the ACME directory itself
    /// (a private authority such as a test's pebble); default: the system's roots.
    #[serde(default)]
    pub acme_ca_file: Option<String>,
    /// HSTS max-age in seconds sent on every HTTPS answer (default 31536000, a year).
    #[serde(default)]
    pub hsts_max_age: Option<u32>,
}

/// Outgoing calls reach public addresses only. Private, loopback and link-local
/// addresses (a database on the office network, the cloud's metadata service)
/// are refused unless listed here.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Hosts (`hooks.internal`, `*.corp.example`), addresses (`127.0.0.1`) and
    /// ranges (`10.0.0.0/8`) that outgoing calls may reach although they are not
    /// public.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The run-time store.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (embedded, default) or `postgres`.
    #[serde(default)]
    pub backend: StoreBackend,
    /// SQLite database file, relative to the workspace root.
    #[serde(default)]
    pub path: Option<String>,
    /// PostgreSQL connection URL, as a `${ENV}` reference (it carries a password).
    #[serde(default)]
    pub url: Option<Secret>,
    /// SQLite `synchronous` level. `full` (default): every acknowledged write survives
    /// a power loss. `normal`: survives a process crash, may lose the last commits on
    /// power loss.
    #[serde(default)]
    pub synchronous: Option<Synchronous>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    Full,
    Normal,
}

/// Email sending and compliance settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Default sender, e.g. `Acme <hello@acme.example>`.
    pub from: EmailAddress,
    /// Default Reply-To address.
    #[serde(default)]
    pub reply_to: Option<EmailAddress>,
    /// The sender's postal address, printed in every marketing email's footer
    /// (CAN-SPAM and similar laws require one).
    #[serde(default)]
    pub postal_address: Option<String>,
    /// SMTP relay. Without it, mail goes to the dev outbox as .eml files.
    #[serde(default)]
    pub smtp: Option<SmtpConfig>,
    /// More relays, tried in order when `smtp` cannot take a message
    /// (unreachable, or a 4xx reply); a relay that failed is passed over for a
    /// minute.
    #[serde(default)]
    pub smtp_fallbacks: Vec<SmtpConfig>,
    /// The dev outbox folder, relative to the workspace root.
    #[serde(default)]
    pub outbox: Option<String>,
    /// Most emails sent per second, across all workflows and broadcasts.
    #[serde(default)]
    pub rate_limit: Option<u32>,
    /// Most emails sent per clock hour, counted in the store across workers
    /// and restarts (a provider's hourly quota).
    #[serde(default)]
    pub hourly_limit: Option<u32>,
    /// DKIM signing of every message, so receivers can tell it comes from the
    /// sender's domain.
    #[serde(default)]
    pub dkim: Option<DkimSettings>,
    /// Open and click tracking of marketing and workflow email (both on unless
    /// switched off here).
    #[serde(default)]
    pub tracking: Option<TrackingSettings>,
    /// The envelope sender (`Return-Path`) that bounces go back to. Each message
    /// is sent from its own tagged form of it (VERP,
    /// `bounces+<send token>@domain`), so a bounce names the send it reports.
    /// Defaults to the From address.
    #[serde(default)]
    pub return_path: Option<EmailAddress>,
    /// Email providers that report bounces and complaints to the daemon
    /// (`POST /email/events/<provider>`), each verified as the provider signs it.
    #[serde(default)]
    pub events: Option<EmailEventSources>,
    /// What one email costs to send (in the currency of deal values), for
    /// the ROI of workflows and campaigns (`funnel analytics roi`). Default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub cost_per_send: Option<f64>,
}

/// The providers whose bounce and complaint reports the daemon accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailEventSources {
    /// Amazon SES notifications through SNS (signature version 2, SHA-256).
    #[serde(default)]
    pub ses: Option<SesEvents>,
    /// SendGrid's signed event webhook (ECDSA P-256).
    #[serde(default)]
    pub sendgrid: Option<SendgridEvents>,
    /// Mailgun's webhooks (HMAC-SHA256 with the webhook signing key).
    #[serde(default)]
    pub mailgun: Option<MailgunEvents>,
    /// Postmark's bounce and spam complaint webhooks (HTTP basic auth, the only
    /// proof Postmark offers).
    #[serde(default)]
    pub postmark: Option<PostmarkEvents>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SesEvents {
    /// The SNS signing certificate (PEM), relative to the workspace root: the
    /// one at the notifications' `SigningCertURL`, fetched once and kept.
    pub certificate_file: String,
    /// The topic whose notifications are accepted: AWS signs every topic's
    /// messages with the same certificate, so the topic is what tells yours apart.
    pub topic_arn: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendgridEvents {
    /// The verification key SendGrid shows for the signed event webhook
    /// (base64), e.g. `${SENDGRID_WEBHOOK_KEY}`.
    pub public_key: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailgunEvents {
    /// The HTTP webhook signing key, e.g. `${MAILGUN_WEBHOOK_KEY}`.
    pub signing_key: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostmarkEvents {
    /// The basic-auth user name put in the webhook's URL at Postmark.
    pub username: String,
    /// Its password, e.g. `${POSTMARK_WEBHOOK_PASSWORD}`.
    pub password: Secret,
}

/// Which engagement an email records.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    /// An invisible image that records when the email is opened (mail clients
    /// that load images only; machine opens inflate it).
    #[serde(default = "yes")]
    pub opens: bool,
    /// Links sent through a redirect that records each click.
    #[serde(default = "yes")]
    pub clicks: bool,
}

fn yes() -> bool {
    true
}

/// A DKIM key: the receiver finds its public half in DNS at
/// `<selector>._domainkey.<domain>`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    /// The signing domain (`d=`), normally the From address's domain.
    pub domain: String,
    /// The selector (`s=`) naming the key in DNS.
    pub selector: String,
    /// `ed25519` (RFC 8463) or `rsa` (RSA-SHA256, 2048 bits or more).
    pub algorithm: DkimAlgorithm,
    /// The private key from the environment, e.g. `${DKIM_PRIVATE_KEY}`: for
    /// `rsa` a PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`), for `ed25519` the
    /// 32-byte seed in base64.
    #[serde(default)]
    pub private_key: Option<Secret>,
    /// Or a file holding it, relative to the workspace root (keep it out of git).
    #[serde(default)]
    pub private_key_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DkimAlgorithm {
    Ed25519,
    Rsa,
}

/// An SMTP relay. Credentials are `${ENV}` references.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub username: Option<Secret>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `starttls` (default), `tls` (implicit, port 465) or `none` (loopback only).
    #[serde(default)]
    pub tls: Option<SmtpTls>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

/// Defaults for workflows and executions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Retry policy for steps that do not set their own.
    #[serde(default)]
    pub retry: Option<super::step::RetryPolicy>,
    /// Timeout for steps that do not set their own.
    #[serde(default)]
    pub step_timeout: Option<DurationText>,
    /// How long finished executions are kept before pruning.
    #[serde(default)]
    pub execution_retention: Option<DurationText>,
    /// Most bytes of a step's output kept in the store; longer outputs are cut with a marker.
    #[serde(default)]
    pub max_step_output_bytes: Option<u32>,
}
