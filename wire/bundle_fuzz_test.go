package wire

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// FuzzBundle: any bytes the device reads as its provisioning bundle (JSON, with the
// topic_root field) decode or fail with an error, and Check names what is wrong or accepts;
// never a panic. A bundle Check accepts re-encodes and decodes to the same value, which
// Check accepts again (the agent writes its own copy at first start and reads it back at
// every start after).
func FuzzBundle(f *testing.F) {
	b := testBundle()
	b.MQTT, b.HTTP, b.Product, b.ManifestVersion = "mqtt://127.0.0.1:1883", "http://127.0.0.1:8080", "watermeter", 3
	plain, _ := json.Marshal(&b)
	f.Add(plain)
	indented, _ := json.MarshalIndent(&b, "", "  ") // as the agent keeps its copy
	f.Add(indented)
	b.ChainKey = nil // erased once the log exists
	erased, _ := json.Marshal(&b)
	f.Add(erased)
	// Every root of the topic-root vectors, valid or not, in a bundle.
	if raw, err := os.ReadFile("../testdata/vectors/wire/topic-roots.json"); err == nil {
		var vs []topicRootVector
		if json.Unmarshal(raw, &vs) == nil {
			for _, v := range vs {
				b.TopicRoot = v.Root
				enc, _ := json.Marshal(&b)
				f.Add(enc)
			}
		}
	}
	f.Add([]byte(`{"device":"m","chain_key":"zz","uplink_key":null,"epoch":-1}`))
	f.Add([]byte(`{"device":"m","epoch":4294967296,"topic_root":"a/+/b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Bundle
		if err := json.Unmarshal(data, &b); err != nil {
			return
		}
		if err := b.Check(); err != nil {
			if err.Error() == "" {
				t.Fatal("Check refused without saying why")
			}
			return
		}
		enc, err := json.Marshal(&b)
		if err != nil {
			t.Fatalf("an accepted bundle does not encode: %v", err)
		}
		var back Bundle
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("%s does not decode: %v", enc, err)
		}
		if err := back.Check(); err != nil {
			t.Fatalf("%s: accepted, re-encoded, refused: %v", enc, err)
		}
		if !sameBundle(&b, &back) {
			t.Fatalf("%+v re-encoded as %s decodes to %+v", b, enc, back)
		}
		if again, _ := json.Marshal(&back); !bytes.Equal(again, enc) {
			t.Fatalf("encodings differ:\n%s\n%s", enc, again)
		}
		if back.Topics().Up(back.Device) != b.Topics().Up(b.Device) {
			t.Fatalf("uplink topic %q became %q", b.Topics().Up(b.Device), back.Topics().Up(back.Device))
		}
	})
}

// sameBundle compares two bundles, an absent and an empty key being the same (both
// encode as "").
func sameBundle(a, b *Bundle) bool {
	return a.Device == b.Device && a.Epoch == b.Epoch && a.Product == b.Product && a.ManifestVersion == b.ManifestVersion &&
		a.MQTT == b.MQTT && a.HTTP == b.HTTP && a.TopicRoot == b.TopicRoot &&
		bytes.Equal(a.ChainKey, b.ChainKey) && bytes.Equal(a.UplinkKey, b.UplinkKey) &&
		bytes.Equal(a.DownlinkKey, b.DownlinkKey) && bytes.Equal(a.ServerPub, b.ServerPub)
}
