package lorawan_test

import (
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lorawan"
)

// Each network server's documented JSON parses to the right DevEUI, port and frame.
func TestParseLoRaWANUplink(t *testing.T) {
	cs := `{"deduplicationId":"3ac7e3c4","deviceInfo":{"tenantId":"52f1","applicationId":"a1","devEui":"0102030405060708"},"fCnt":10,"fPort":73,"data":"AQID"}`
	eui, ns, port, frame, err := lorawan.ParseUplink(server.LoRaWANChirpStack, []byte(cs))
	if err != nil || eui != "0102030405060708" || ns != eui || port != 73 || string(frame) != "\x01\x02\x03" {
		t.Fatalf("chirpstack: %q %q %d %x %v", eui, ns, port, frame, err)
	}
	tts := `{"end_device_ids":{"device_id":"dev1","application_ids":{"application_id":"app1"},"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_port":73,"f_cnt":2,"frm_payload":"AQID"}}`
	eui, ns, port, frame, err = lorawan.ParseUplink(server.LoRaWANTTS, []byte(tts))
	if err != nil || eui != "0004a30b001c0530" || ns != "dev1" || port != 73 || string(frame) != "\x01\x02\x03" {
		t.Fatalf("tts: %q %q %d %x %v", eui, ns, port, frame, err)
	}
	if _, _, _, _, err := lorawan.ParseUplink(server.LoRaWANTTS, []byte(`{"end_device_ids":{"device_id":"d"},"join_accept":{}}`)); err == nil {
		t.Fatal("a join-accept taken as an uplink")
	}
}
