-- Districts for the server's water balance (store.District): the analytics configuration
-- is kept as JSON; each meter's role in a district is a row of district_members.
-- Ids compare bytewise (COLLATE "C"), as in the other backends.
CREATE TABLE districts (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT NOT NULL,
  config TEXT NOT NULL,
  updated BIGINT NOT NULL
);
CREATE TABLE district_members (
  district TEXT COLLATE "C" NOT NULL REFERENCES districts(id) ON DELETE CASCADE,
  dev TEXT COLLATE "C" NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (district, dev)
);
CREATE INDEX district_members_dev ON district_members(dev);
