package agent_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The device side and the offline verifier (fschain's export check) are the trusted base:
// they must never pull in SQL drivers, an MQTT broker, HTML templating or the server.
// `go list -deps` sees what the linker would.
func TestTrustedBaseDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	forbidden := []string{
		"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/mattn/go-sqlite3",
		"github.com/mochi-mqtt/server", "html/template", "text/template",
		"github.com/fieldseal/fieldseal/server", "github.com/fieldseal/fieldseal/store",
		"github.com/prometheus/",
	}
	for _, pkg := range []string{"agent", "fschain", "wire", "manifest"} {
		out, err := exec.Command(goBin, "list", "-deps", "github.com/fieldseal/fieldseal/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
		t.Logf("%s: %d packages, none forbidden", pkg, len(deps))
	}
}
