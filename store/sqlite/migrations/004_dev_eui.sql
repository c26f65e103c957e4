-- A device's LoRaWAN DevEUI (store.Device.DevEUI), set at provisioning: 16 lowercase hex
-- digits, NULL for devices without one. Unique: a DevEUI names one device.
ALTER TABLE devices ADD COLUMN dev_eui TEXT;
CREATE UNIQUE INDEX devices_dev_eui ON devices(dev_eui);
