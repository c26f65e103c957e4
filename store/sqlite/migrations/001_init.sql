-- fieldseal schema v1. Portable SQL: INTEGER unix-nanosecond times, BLOB bytes
-- (bytea on PostgreSQL), no backend-specific types beyond that.
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  product TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  version INTEGER NOT NULL,
  uplink_key BLOB NOT NULL,
  downlink_key BLOB NOT NULL,
  state TEXT NOT NULL,
  state_since INTEGER NOT NULL,
  state_reason TEXT NOT NULL DEFAULT '',
  pinned_version INTEGER NOT NULL DEFAULT 0,
  running_version INTEGER NOT NULL DEFAULT 0,
  anchor_n INTEGER NOT NULL,
  anchor_head BLOB NOT NULL,
  anchor_key BLOB NOT NULL,
  receipt BLOB,
  last_rseq INTEGER NOT NULL DEFAULT 0,
  last_report_hash BLOB,
  last_ack BLOB,
  nonce BLOB,
  prev_nonce BLOB,
  last_seen INTEGER NOT NULL DEFAULT 0,
  last_device_time INTEGER NOT NULL DEFAULT 0,
  last_boot INTEGER NOT NULL DEFAULT 0,
  report_interval INTEGER NOT NULL DEFAULT 0,
  rejections INTEGER NOT NULL DEFAULT 0,
  window_until INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL
);
CREATE INDEX devices_state ON devices(state);

CREATE TABLE manifests (
  product TEXT NOT NULL,
  version INTEGER NOT NULL,
  root BLOB NOT NULL,
  signed BLOB NOT NULL,
  created INTEGER NOT NULL,
  report_interval INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (product, version)
);

CREATE TABLE events (
  dev TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  n INTEGER NOT NULL,
  t INTEGER NOT NULL,
  type INTEGER NOT NULL,
  tamper INTEGER NOT NULL,
  payload BLOB NOT NULL,
  decoded TEXT NOT NULL DEFAULT '',
  tag BLOB NOT NULL,
  head BLOB NOT NULL,
  received INTEGER NOT NULL,
  PRIMARY KEY (dev, epoch, n)
);

CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  dev TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_dev ON audit(dev, id);

CREATE TABLE alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  dev TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  acked_at INTEGER NOT NULL DEFAULT 0,
  acked_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alerts_dev ON alerts(dev, id);

CREATE TABLE tokens (
  id BLOB PRIMARY KEY,
  dev TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  action TEXT NOT NULL,
  sealed BLOB NOT NULL,
  issued INTEGER NOT NULL,
  expires INTEGER NOT NULL,
  win INTEGER NOT NULL DEFAULT 0,
  used INTEGER NOT NULL DEFAULT 0,
  used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_dev ON tokens(dev, epoch, used);

CREATE TABLE visits (
  id TEXT PRIMARY KEY,
  dev TEXT NOT NULL,
  work_order TEXT NOT NULL,
  technician TEXT NOT NULL,
  token_id BLOB,
  opened INTEGER NOT NULL,
  closed INTEGER NOT NULL DEFAULT 0,
  seal_number TEXT NOT NULL DEFAULT '',
  result TEXT NOT NULL DEFAULT ''
);
CREATE INDEX visits_dev ON visits(dev);

CREATE TABLE api_tokens (
  hash BLOB PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  created INTEGER NOT NULL
);
