-- HTTPS for sites with a custom domain: the ACME account of each directory
-- and each domain's current certificate (chain and key, PEM), so that a
-- restarted daemon serves at once and renews only when due.
-- Twin: migrations/postgres/V23__tls_certificates.sql.
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    -- instant-acme's account credentials (JSON, with the account's key).
    credentials TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tls_certificates (
    domain TEXT PRIMARY KEY,
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    issued_at INTEGER NOT NULL
);
