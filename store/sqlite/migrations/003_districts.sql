-- Districts for the server's water balance (store.District): the analytics configuration
-- is kept as JSON; each meter's role in a district is a row of district_members.
CREATE TABLE districts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  config TEXT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE TABLE district_members (
  district TEXT NOT NULL REFERENCES districts(id) ON DELETE CASCADE,
  dev TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (district, dev)
);
CREATE INDEX district_members_dev ON district_members(dev);
