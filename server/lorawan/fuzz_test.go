package lorawan_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lorawan"
)

// FuzzParseUplink: any network-server event, of either kind, parses or fails with an error,
// never a panic (the network server is not trusted). A parse that succeeds names a DevEUI
// of 16 lowercase hex digits, a one-byte fPort and a frame no larger than a LoRaWAN payload,
// and the downlink formatted for that device, port and frame carries them back unchanged.
func FuzzParseUplink(f *testing.F) {
	// The documented events of TestParseLoRaWANUplink, and the shapes around them.
	f.Add(false, []byte(`{"deduplicationId":"3ac7e3c4","deviceInfo":{"tenantId":"52f1","applicationId":"a1","devEui":"0102030405060708"},"fCnt":10,"fPort":73,"data":"AQID"}`))
	f.Add(true, []byte(`{"end_device_ids":{"device_id":"dev1","application_ids":{"application_id":"app1"},"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_port":73,"f_cnt":2,"frm_payload":"AQID"}}`))
	f.Add(true, []byte(`{"end_device_ids":{"device_id":"d"},"join_accept":{}}`))
	f.Add(false, []byte(`{"deviceInfo":{"devEui":"0102030405060708"},"fPort":4294967295,"data":"`+base64.StdEncoding.EncodeToString(make([]byte, 300))+`"}`))
	f.Add(false, []byte(`{"deviceInfo":{},"data":""}`))
	f.Add(true, []byte(`{"end_device_ids":{"dev_eui":"zz04A30B001C0530"},"uplink_message":{"f_port":256,"frm_payload":"AQ=="}}`))
	f.Fuzz(func(t *testing.T, tts bool, msg []byte) {
		kind := server.LoRaWANChirpStack
		if tts {
			kind = server.LoRaWANTTS
		}
		eui, nsDev, fport, frame, err := lorawan.ParseUplink(kind, msg)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if b, err := hex.DecodeString(eui); err != nil || len(b) != 8 || hex.EncodeToString(b) != eui {
			t.Fatalf("accepted DevEUI %q: want 16 lowercase hex digits", eui)
		}
		if fport > 255 {
			t.Fatalf("accepted fPort %d: LoRaWAN ports are one byte", fport)
		}
		if len(frame) > lorawan.MaxFRMPayload {
			t.Fatalf("accepted a %d-byte frame, more than a LoRaWAN payload", len(frame))
		}
		if nsDev == "" {
			t.Fatal("accepted an event naming no device to answer")
		}
		// The downlink for what was parsed carries the same port and frame back.
		var dl struct {
			DevEui    string `json:"devEui"`
			FPort     int    `json:"fPort"`
			Data      []byte `json:"data"`
			Downlinks []struct {
				FPort int    `json:"f_port"`
				Data  []byte `json:"frm_payload"`
			} `json:"downlinks"`
		}
		out := lorawan.Downlink(kind, nsDev, uint8(fport), frame)
		if err := json.Unmarshal(out, &dl); err != nil {
			t.Fatalf("downlink %s: %v", out, err)
		}
		if tts {
			if len(dl.Downlinks) != 1 || dl.Downlinks[0].FPort != int(fport) || string(dl.Downlinks[0].Data) != string(frame) {
				t.Fatalf("downlink %s does not carry port %d, frame %x", out, fport, frame)
			}
		} else if dl.DevEui != nsDev || dl.FPort != int(fport) || string(dl.Data) != string(frame) {
			t.Fatalf("downlink %s does not carry %s, port %d, frame %x", out, nsDev, fport, frame)
		}
	})
}

// An event the network server garbled — no or a malformed DevEUI, a port beyond one byte,
// a payload larger than LoRaWAN carries — is an error that names what is wrong, not a
// frame for a device named "".
func TestParseUplinkRefusesMalformedEvents(t *testing.T) {
	for name, c := range map[string]struct {
		tts  bool
		msg  string
		want string
	}{
		"no DevEUI":       {false, `{"deviceInfo":{},"fPort":73,"data":"AQID"}`, `DevEUI ""`},
		"short DevEUI":    {true, `{"end_device_ids":{"device_id":"d","dev_eui":"0102"},"uplink_message":{"f_port":73,"frm_payload":"AQID"}}`, `DevEUI "0102"`},
		"no device id":    {true, `{"end_device_ids":{"dev_eui":"0004A30B001C0530"},"uplink_message":{"f_port":73,"frm_payload":"AQID"}}`, "names no device id"},
		"port":            {false, `{"deviceInfo":{"devEui":"0102030405060708"},"fPort":329,"data":"AQID"}`, "fPort 329"},
		"payload":         {false, `{"deviceInfo":{"devEui":"0102030405060708"},"fPort":73,"data":"` + base64.StdEncoding.EncodeToString(make([]byte, 243)) + `"}`, "243-byte payload"},
		"not base64":      {false, `{"deviceInfo":{"devEui":"0102030405060708"},"fPort":73,"data":"!!"}`, "illegal base64"},
		"not an uplink":   {true, `{"end_device_ids":{"device_id":"d","dev_eui":"0004A30B001C0530"},"join_accept":{}}`, "not an uplink"},
		"not JSON at all": {false, `{"deviceInfo":`, "unexpected end"},
	} {
		kind := server.LoRaWANChirpStack
		if c.tts {
			kind = server.LoRaWANTTS
		}
		eui, _, _, frame, err := lorawan.ParseUplink(kind, []byte(c.msg))
		if err == nil || !strings.Contains(err.Error(), c.want) || eui != "" || frame != nil {
			t.Errorf("%s: %q %x %v; want an error naming %s", name, eui, frame, err, c.want)
		}
	}
}
