-- The operator's fleet list (store.DeviceQuery): each filter with each sort is served by an
-- index, so a page is a range read at any fleet size; search by work order or seal number
-- goes through the visits.
CREATE INDEX devices_state_id ON devices(state, id);
CREATE INDEX devices_product_id ON devices(product, id);
CREATE INDEX devices_seen_id ON devices(last_seen, id);
CREATE INDEX devices_state_seen_id ON devices(state, last_seen, id);
CREATE INDEX visits_work_order ON visits(work_order);
CREATE INDEX visits_seal_number ON visits(seal_number);
