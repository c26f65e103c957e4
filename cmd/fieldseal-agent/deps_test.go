package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The device binary is the trusted base a meter runs: what it links must be what its job
// needs. Each forbidden package says why it has no business here. `go list -deps` on this
// main package is exactly what the linker sees (in the spirit of Tailscale's deps_test.go).
var forbidden = map[string]string{
	"database/sql":                                   "SQL is the server's store, never the device's",
	"modernc.org/sqlite":                             "SQL driver (server store)",
	"github.com/jackc/pgx/v5":                        "SQL driver (server store)",
	"github.com/mattn/go-sqlite3":                    "SQL driver, and cgo",
	"github.com/mochi-mqtt/server/v2":                "the MQTT broker: a device is a client (agent/mqtt.go)",
	"github.com/eclipse/paho.mqtt.golang":            "a general MQTT client: the agent has its own small one that holds PUBACKs (agent/mqtt.go)",
	"github.com/gorilla/websocket":                   "the broker's websocket listener",
	"html/template":                                  "the operator's console is the server's",
	"text/template":                                  "templating: nothing on the device renders pages",
	"github.com/prometheus/client_golang":            "metrics are the server's",
	"github.com/BurntSushi/toml":                     "the server's configuration file",
	"net/http/pprof":                                 "profiling endpoints do not belong on a field device",
	"github.com/fieldseal/fieldseal/server":          "the fleet server",
	"github.com/fieldseal/fieldseal/store":           "the server's storage",
	"github.com/fieldseal/fieldseal/internal/cli":    "the full fieldseal binary's verbs (server, build, demo…)",
	"github.com/fieldseal/fieldseal/internal/demo":   "the demo application",
	"github.com/fieldseal/fieldseal/sim":             "the simulated town",
	"github.com/fieldseal/fieldseal/analytics":       "water balance: server-side",
	"github.com/fieldseal/fieldseal/audit":           "the firmware hardening audit: a workstation tool",
	"github.com/fieldseal/fieldseal/tools/mpy-cross": "the build's compiler: a workstation tool",
}

func deps(t *testing.T, env ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	cmd := exec.Command(goBin, "list", "-deps", ".")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func TestDeviceBinaryDependencies(t *testing.T) {
	for _, target := range [][]string{nil, {"GOOS=linux", "GOARCH=arm", "GOARM=7"}, {"GOOS=linux", "GOARCH=arm64"}} {
		ds := deps(t, target...)
		for _, d := range ds {
			for f, why := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%v: fieldseal-agent links %s: %s", target, d, why)
				}
			}
		}
		t.Logf("%v: %d packages, none forbidden", target, len(ds))
	}
}

// The rules above must be able to fail: the full fieldseal binary breaks several.
func TestDependencyRulesBite(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "../fieldseal").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	hits := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		for f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				hits[f] = true
			}
		}
	}
	for _, must := range []string{"modernc.org/sqlite", "github.com/mochi-mqtt/server/v2", "html/template", "github.com/prometheus/client_golang"} {
		if !hits[must] {
			t.Errorf("the full binary does not link %s: the rule guards nothing", must)
		}
	}
}

// The device binary cross-compiles for the boards it runs on (32-bit ARMv7 and arm64).
func TestCrossCompile(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	for _, target := range [][]string{{"GOOS=linux", "GOARCH=arm", "GOARM=7"}, {"GOOS=linux", "GOARCH=arm64"}} {
		out := filepath.Join(t.TempDir(), "fieldseal-agent")
		cmd := exec.Command(goBin, "build", "-trimpath", "-o", out, ".")
		cmd.Env = append(os.Environ(), append(target, "CGO_ENABLED=0")...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: go build: %v\n%s", target, err, b)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("%v: no binary: %v", target, err)
		}
		t.Logf("%v: %d bytes", target, fi.Size())
	}
}
