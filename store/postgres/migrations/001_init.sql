-- fieldseal schema v1 for PostgreSQL: the same tables, columns and indexes as
-- store/sqlite/migrations/001_init.sql, with native types: bytea for bytes, timestamptz
-- (microseconds) for times, NULL for the zero time, bigint for every integer field so
-- uint32 values fit and uint64 values round-trip through int64 as on SQLite.
CREATE TABLE devices (
  id text PRIMARY KEY,
  product text NOT NULL,
  epoch bigint NOT NULL,
  version bigint NOT NULL,
  uplink_key bytea NOT NULL,
  downlink_key bytea NOT NULL,
  state text NOT NULL,
  state_since timestamptz,
  state_reason text NOT NULL DEFAULT '',
  pinned_version bigint NOT NULL DEFAULT 0,
  running_version bigint NOT NULL DEFAULT 0,
  anchor_n bigint NOT NULL,
  anchor_head bytea NOT NULL,
  anchor_key bytea NOT NULL,
  receipt bytea,
  last_rseq bigint NOT NULL DEFAULT 0,
  last_report_hash bytea,
  last_ack bytea,
  nonce bytea,
  prev_nonce bytea,
  last_seen timestamptz,
  last_device_time bigint NOT NULL DEFAULT 0,
  last_boot bigint NOT NULL DEFAULT 0,
  report_interval bigint NOT NULL DEFAULT 0,
  rejections bigint NOT NULL DEFAULT 0,
  window_until bigint NOT NULL DEFAULT 0,
  created timestamptz
);
CREATE INDEX devices_state ON devices(state);

CREATE TABLE manifests (
  product text NOT NULL,
  version bigint NOT NULL,
  root bytea NOT NULL,
  signed bytea NOT NULL,
  created timestamptz,
  report_interval bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (product, version)
);

CREATE TABLE events (
  dev text NOT NULL,
  epoch bigint NOT NULL,
  n bigint NOT NULL,
  t bigint NOT NULL,
  type integer NOT NULL,
  tamper boolean NOT NULL,
  payload bytea NOT NULL,
  decoded text NOT NULL DEFAULT '',
  tag bytea NOT NULL,
  head bytea NOT NULL,
  received timestamptz,
  PRIMARY KEY (dev, epoch, n)
);

CREATE TABLE audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz,
  actor text NOT NULL,
  kind text NOT NULL,
  dev text NOT NULL DEFAULT '',
  reason text NOT NULL DEFAULT '',
  detail text NOT NULL DEFAULT ''
);
CREATE INDEX audit_dev ON audit(dev, id);

CREATE TABLE alerts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz,
  dev text NOT NULL,
  kind text NOT NULL,
  reason text NOT NULL,
  detail text NOT NULL DEFAULT '',
  acked_at timestamptz,
  acked_by text NOT NULL DEFAULT ''
);
CREATE INDEX alerts_dev ON alerts(dev, id);

CREATE TABLE tokens (
  id bytea PRIMARY KEY,
  dev text NOT NULL,
  epoch bigint NOT NULL,
  action text NOT NULL,
  sealed bytea NOT NULL,
  issued timestamptz,
  expires timestamptz,
  win bigint NOT NULL DEFAULT 0,
  used boolean NOT NULL DEFAULT false,
  used_at timestamptz
);
CREATE INDEX tokens_dev ON tokens(dev, epoch, used);

CREATE TABLE visits (
  id text PRIMARY KEY,
  dev text NOT NULL,
  work_order text NOT NULL,
  technician text NOT NULL,
  token_id bytea,
  opened timestamptz,
  closed timestamptz,
  seal_number text NOT NULL DEFAULT '',
  result text NOT NULL DEFAULT ''
);
CREATE INDEX visits_dev ON visits(dev);

CREATE TABLE api_tokens (
  hash bytea PRIMARY KEY,
  name text NOT NULL UNIQUE,
  role text NOT NULL,
  created timestamptz
);

-- fieldseal_conflict raises the error Commit maps to store.ErrConflict. A compare-and-set
-- that matched no row calls it, so the failure aborts the change inside the pipelined
-- batch exactly as a duplicate key does, and Commit rolls back to that change's savepoint.
CREATE FUNCTION fieldseal_conflict(msg text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = 'FS409', MESSAGE = msg;
END
$$;
