package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The server is wired, not welded: it takes its store and console from the composition
// root (internal/cli's `fieldseal server`, internal/demo) and its transports from
// server/serve, so it must not pull in a storage backend, the HTML console, or a
// transport (HTTP API, MQTT broker and clients) itself.
func TestServerImportsNoBackend(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "github.com/fieldseal/fieldseal/server").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := map[string]string{
		"github.com/fieldseal/fieldseal/store/sqlite":      "a backend: the composition root opens the store (store/storeurl)",
		"github.com/fieldseal/fieldseal/store/postgres":    "a backend: the composition root opens the store (store/storeurl)",
		"github.com/fieldseal/fieldseal/store/memstore":    "a test store",
		"github.com/fieldseal/fieldseal/store/storeurl":    "the composition root's job",
		"github.com/fieldseal/fieldseal/server/dashboard":  "mounted by the composition root through Config.Dashboard",
		"github.com/fieldseal/fieldseal/server/httpapi":    "a transport, attached by server/serve",
		"github.com/fieldseal/fieldseal/server/mqttingest": "a transport, attached by server/serve",
		"github.com/fieldseal/fieldseal/server/lorawan":    "a transport, attached by server/serve",
		"github.com/fieldseal/fieldseal/server/serve":      "the assembly above the server",
		"github.com/mochi-mqtt/server/v2":                  "the MQTT broker: server/mqttingest",
		"github.com/eclipse/paho.mqtt.golang":              "an MQTT client: server/mqttingest, server/lorawan",
		"modernc.org/sqlite":                               "a SQL driver",
		"github.com/jackc/pgx/v5":                          "a SQL driver",
	}
	for _, d := range strings.Fields(string(out)) {
		if why, bad := forbidden[d]; bad {
			t.Errorf("server depends on %s: %s", d, why)
		}
	}
}
