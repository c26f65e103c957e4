package wire

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// topicRootVector is one case of testdata/vectors/wire/topic-roots.json, the rule a topic
// root follows; the guard runs the same file (device/micropython/harness/wirevectors.py).
type topicRootVector struct {
	Root  string `json:"root"`
	Valid bool   `json:"valid"`
	Desc  string `json:"desc"`
}

func TestTopicRootVectors(t *testing.T) {
	raw, err := os.ReadFile("../testdata/vectors/wire/topic-roots.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []topicRootVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("%d topic-root vectors", len(vs))
	}
	for _, v := range vs {
		if got := ValidTopicRoot(v.Root); got != v.Valid {
			t.Errorf("%s: ValidTopicRoot(%q) = %v, want %v", v.Desc, v.Root, got, v.Valid)
		}
		// A bundle carries the same rule: a bad root fails Check by name.
		b := testBundle()
		b.TopicRoot = v.Root
		err := b.Check()
		switch {
		case v.Root == "":
			if err != nil {
				t.Errorf("absent topic_root (the default root): %v", err)
			}
		case v.Valid && err != nil:
			t.Errorf("%s: bundle with topic_root %q: %v", v.Desc, v.Root, err)
		case !v.Valid && (!errors.Is(err, ErrMalformed) || !strings.Contains(errText(err), "topic_root")):
			t.Errorf("%s: bundle with topic_root %q: err %v, want malformed topic_root", v.Desc, v.Root, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func testBundle() Bundle {
	k := make([]byte, 32)
	return Bundle{Device: "meter-0001", Epoch: 1, ChainKey: k, UplinkKey: k, DownlinkKey: k, ServerPub: k}
}

// A bundle names its root only when it is not the default, so bundles of a default server
// are byte-for-byte what they were, and an old bundle (no topic_root) means the default.
func TestBundleTopicRootEncoding(t *testing.T) {
	b := testBundle()
	enc, _ := json.Marshal(&b)
	if strings.Contains(string(enc), "topic_root") {
		t.Fatalf("default root written: %s", enc)
	}
	var old Bundle
	if err := json.Unmarshal(enc, &old); err != nil || old.Topics().Up("meter-0001") != "fieldseal/v1/meter-0001/up" {
		t.Fatalf("old bundle: %v %q", err, old.Topics().Up("meter-0001"))
	}
	b.TopicRoot = "plant-a/meters"
	enc, _ = json.Marshal(&b)
	var back Bundle
	if err := json.Unmarshal(enc, &back); err != nil || back.Topics().Down("meter-0001") != "plant-a/meters/meter-0001/down" {
		t.Fatalf("%s: %v %q", enc, err, back.Topics().Down("meter-0001"))
	}
}
