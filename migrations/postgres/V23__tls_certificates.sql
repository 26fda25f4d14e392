-- HTTPS for sites with a custom domain: the ACME account of each directory
-- and each domain's current certificate (chain and key, PEM), so that a
-- restarted daemon serves at once and renews only when due.
-- Twin: migrations/sqlite/V23__tls_certificates.sql.
CREATE TABLE acme_accounts (
    directory TEXT PRIMARY KEY,
    -- instant-acme's account credentials (JSON, with the account's key).
    credentials TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE tls_certificates (
    domain TEXT PRIMARY KEY,
    chain_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    serial TEXT NOT NULL,
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    issued_at BIGINT NOT NULL
);
