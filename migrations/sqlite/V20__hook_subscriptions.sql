-- Outbound webhook subscriptions (REST hooks) and their deliveries, queued in
-- the transaction that ingests each event and sent by the worker with
-- retries. Twin: migrations/postgres/V20__hook_subscriptions.sql.
CREATE TABLE hook_subscriptions (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    target_url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX hook_subscriptions_by_event ON hook_subscriptions (event);

CREATE TABLE hook_deliveries (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    subscription_id INTEGER NOT NULL REFERENCES hook_subscriptions (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    -- Whom the event is about: erasing the person erases their deliveries.
    contact_id INTEGER,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (status, next_at);
CREATE INDEX hook_deliveries_by_subscription ON hook_deliveries (subscription_id, status);
CREATE INDEX hook_deliveries_by_contact ON hook_deliveries (contact_id);
