package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// Transport vocabulary (docs/PROTOCOL.md, "Transports"): the MQTT topics, the device's
// MQTT password and the HTTP media types. Agents, the server, the simulator and the tools
// take them from here; internal/vocabulary's test fails if another package spells them out.

// DefaultTopicRoot is the root of every fieldseal MQTT topic unless an operator gives
// another (two fleets on one broker: a root each).
const DefaultTopicRoot = "fieldseal/v1"

// Topics are the MQTT topics under one root: a device publishes its reports on
// <root>/<id>/up and takes acks from <root>/<id>/down.
type Topics struct{ Root string }

// DefaultTopics are the topics under DefaultTopicRoot.
var DefaultTopics = Topics{Root: DefaultTopicRoot}

func (t Topics) root() string {
	if t.Root == "" {
		return DefaultTopicRoot
	}
	return strings.TrimSuffix(t.Root, "/")
}

// Up is a device's uplink topic.
func (t Topics) Up(dev string) string { return t.root() + "/" + dev + "/up" }

// Down is a device's downlink topic.
func (t Topics) Down(dev string) string { return t.root() + "/" + dev + "/down" }

// UplinkFilter is the subscription to every device's uplink.
func (t Topics) UplinkFilter() string { return t.root() + "/+/up" }

// SharedUplinkFilter is UplinkFilter as an MQTT 5 shared subscription of group.
func (t Topics) SharedUplinkFilter(group string) string {
	return "$share/" + group + "/" + t.UplinkFilter()
}

// DeviceOfUp returns the device id of an uplink topic under this root.
func (t Topics) DeviceOfUp(topic string) (string, bool) {
	prefix := t.root() + "/"
	if !strings.HasPrefix(topic, prefix) || !strings.HasSuffix(topic, "/up") {
		return "", false
	}
	dev := topic[len(prefix) : len(topic)-len("/up")]
	return dev, dev != "" && !strings.Contains(dev, "/")
}

// TopicRootRule says what ValidTopicRoot wants, for error messages.
const TopicRootRule = "want levels separated by '/', no wildcards (+ #), no leading '$', no empty level"

// ValidTopicRoot says whether root can be a topic root: non-empty, no wildcards, no
// leading '$' (reserved by brokers), no empty level. The guard applies the same rule
// (fieldseal/uplink.py, check_topic_root); testdata/vectors/wire/topic-roots.json holds both to it.
func ValidTopicRoot(root string) bool {
	if root == "" || strings.HasPrefix(root, "$") || strings.ContainsAny(root, "+#\x00") {
		return false
	}
	for _, l := range strings.Split(root, "/") {
		if l == "" {
			return false
		}
	}
	return true
}

// MQTTPassword is the password a device presents to the broker (its username is its
// device id): lowercase hex of HMAC-SHA-256(R, "fs1/mqtt-password"), so provisioning hands
// out nothing more and the server can check it.
func MQTTPassword(uplinkKey []byte) string {
	m := hmac.New(sha256.New, uplinkKey)
	m.Write([]byte("fs1/mqtt-password"))
	return hex.EncodeToString(m.Sum(nil))
}

// Media types over HTTP.
const (
	// ReportMediaType is the Content-Type of a report and of the ack that answers it.
	ReportMediaType = `application/cose; cose-type="cose-mac0"`
	// ReportMediaTypeBase is its media type without parameters, as mime.ParseMediaType returns it.
	ReportMediaTypeBase = "application/cose"
	// ManifestMediaType is the Content-Type of a signed manifest (COSE_Sign1).
	ManifestMediaType = `application/cose; cose-type="cose-sign1"`
)

// ErrorName is the stable name of an error of this package (malformed, oversize, bad-mac,
// bad-signature, unknown-key, unsupported, bad-manifest, downgrade, wrong-product), or ""
// when err is none of them. Logs, metrics and API answers use these names verbatim.
func ErrorName(err error) string {
	for _, e := range namedErrors {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return ""
}

// namedErrors in the order ErrorName tries them: the specific before the general.
var namedErrors = []error{ErrDowngrade, ErrWrongProduct, ErrUnknownKey, ErrBadSig, ErrBadManifest,
	ErrOversize, ErrBadMAC, ErrUnsupported, ErrMalformed}
