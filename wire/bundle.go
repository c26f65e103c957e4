package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
)

// Bundle is what provisioning hands a device, once: identity, the three secrets of
// fschain.md ("Keys") and where to report. JSON, so the MicroPython guard can read it with
// its built-in json module. Byte fields are lowercase hex.
type Bundle struct {
	Device          string   `json:"device"`
	Epoch           uint32   `json:"epoch"`
	ChainKey        HexBytes `json:"chain_key"`    // K_1
	UplinkKey       HexBytes `json:"uplink_key"`   // R
	DownlinkKey     HexBytes `json:"downlink_key"` // T
	ServerPub       HexBytes `json:"server_pub"`   // Ed25519, verifies anchor receipts
	Product         string   `json:"product"`
	ManifestVersion uint64   `json:"manifest_version"`
	MQTT            string   `json:"mqtt,omitempty"` // mqtt://host:port
	HTTP            string   `json:"http,omitempty"` // http://host:port
	// TopicRoot is the root of the server's MQTT topics; absent (bundles from before it,
	// or a server on the default) means DefaultTopicRoot.
	TopicRoot string `json:"topic_root,omitempty"`
}

// Topics are the MQTT topics the bundle's device reports on.
func (b *Bundle) Topics() Topics { return Topics{Root: b.TopicRoot} }

var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// ValidDeviceID reports whether id is a device id of fschain.md: 1–64 of [A-Za-z0-9._:-].
func ValidDeviceID(id string) bool { return deviceIDPattern.MatchString(id) }

// Check validates a bundle's fields.
func (b *Bundle) Check() error {
	if !ValidDeviceID(b.Device) {
		return fmt.Errorf("%w: invalid device id %q", ErrMalformed, b.Device)
	}
	for name, k := range map[string][]byte{"chain_key": b.ChainKey, "uplink_key": b.UplinkKey, "downlink_key": b.DownlinkKey, "server_pub": b.ServerPub} {
		if len(k) == 0 && name == "chain_key" {
			continue // erased from the device's copy once its log exists (forward security)
		}
		if len(k) != 32 {
			return fmt.Errorf("%w: %s is %d bytes, want 32", ErrMalformed, name, len(k))
		}
	}
	if b.TopicRoot != "" && !ValidTopicRoot(b.TopicRoot) {
		// caught at provisioning, not after a device published where nobody listens
		return fmt.Errorf("%w: topic_root %q: %s", ErrMalformed, b.TopicRoot, TopicRootRule)
	}
	return nil
}

// HexBytes is a byte slice that encodes as lowercase hex in JSON.
type HexBytes []byte

func (h HexBytes) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

func (h *HexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	*h = b
	return nil
}
