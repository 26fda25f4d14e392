-- The daemon's metrics, one row per minute and route: what /metrics shows, kept
-- for reports. Written once a minute (and at shutdown), never per request.
CREATE TABLE metrics_minutes (
    minute INTEGER NOT NULL,
    route TEXT NOT NULL,
    requests INTEGER NOT NULL,
    client_errors INTEGER NOT NULL,
    server_errors INTEGER NOT NULL,
    latency_ms_sum REAL NOT NULL,
    latency_ms_max REAL NOT NULL,
    PRIMARY KEY (minute, route)
);
-- Gauges sampled at the end of each minute: executions running, waiting and
-- queued, timers due, emails pending.
CREATE TABLE gauges_minutes (
    minute INTEGER NOT NULL,
    gauge TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (minute, gauge)
);
