package devicecli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/wire"
)

// log verify --chain-key given a device bundle whose K_1 the agent erased says so.
func TestChainKeyFromErasedBundle(t *testing.T) {
	b := wire.Bundle{Device: "m1", Epoch: 1, UplinkKey: make([]byte, 32), DownlinkKey: make([]byte, 32), ServerPub: make([]byte, 32), Product: "p"}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m1.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseChainKey(path); err == nil || !strings.Contains(err.Error(), "operator's copy") {
		t.Fatalf("--chain-key with an erased bundle: %v", err)
	}
}
