-- The daemon's metrics, one row per minute and route: what /metrics shows, kept
-- for reports. Written once a minute (and at shutdown), never per request.
CREATE TABLE metrics_minutes (
    minute BIGINT NOT NULL,
    route TEXT NOT NULL,
    requests BIGINT NOT NULL,
    client_errors BIGINT NOT NULL,
    server_errors BIGINT NOT NULL,
    latency_ms_sum DOUBLE PRECISION NOT NULL,
    latency_ms_max DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (minute, route)
);
-- Gauges sampled at the end of each minute: executions running, waiting and
-- queued, timers due, emails pending.
CREATE TABLE gauges_minutes (
    minute BIGINT NOT NULL,
    gauge TEXT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (minute, gauge)
);
