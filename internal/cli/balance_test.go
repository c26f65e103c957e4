package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/sim"
)

func balanceRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb}, append([]string{"balance"}, args...))
	return code, out.String(), errb.String()
}

// writeDistrict writes a generated district's configuration and reads as a utility would
// hand them over.
func writeDistrict(t *testing.T, n *sim.Network) (cfgPath, readsPath string) {
	t.Helper()
	dir := t.TempDir()
	raw, _ := json.Marshal(n.Config)
	cfgPath = filepath.Join(dir, "district.json")
	os.WriteFile(cfgPath, raw, 0o644)
	var b strings.Builder
	b.WriteString("meter,time,value\n")
	for _, m := range []map[string]analytics.Series{n.Data.Registers, n.Data.Levels} {
		for id, s := range m {
			for _, r := range s {
				fmt.Fprintf(&b, "%s,%s,%g\n", id, r.T.Format(time.RFC3339), r.Litres)
			}
		}
	}
	readsPath = filepath.Join(dir, "reads.csv")
	os.WriteFile(readsPath, []byte(b.String()), 0o644)
	return cfgPath, readsPath
}

func TestBalanceVerb(t *testing.T) {
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 5, Days: 9, Customers: 40})
	cfgPath, readsPath := writeDistrict(t, n)
	before, _ := os.ReadFile(readsPath)
	code, out, errs := balanceRun(t, "--district", cfgPath, "--reads", readsPath, "--from", "2026-01-06T00:00:00Z", "--to", "2026-01-08T00:00:00Z")
	if code != ExitOK || !strings.Contains(out, ",1,System input volume,") || !strings.Contains(out, "2026-01-06T00:00:00Z,2026-01-08T00:00:00Z") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	want, _ := analytics.Balance(n.Config, n.Data, time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC))
	if line := fmt.Sprintf(",2,Non-revenue water,%.3f,", want.NonRevenueM3); !strings.Contains(out, line) {
		t.Errorf("CSV lacks %q (the same balance as the package's):\n%s", line, out)
	}
	code, out, errs = balanceRun(t, "--district", cfgPath, "--reads", readsPath, "--json")
	assertSnakeCase(t, "balance --json", []byte(out))
	var in analytics.Inspection
	if err := json.Unmarshal([]byte(out), &in); err != nil || code != ExitOK || in.Balance == nil || len(in.List) != 40 || in.Windows < 24*7 {
		t.Fatalf("--json: exit %d, %v, %d windows, %d listed; %s", code, err, in.Windows, len(in.List), errs)
	}
	if after, _ := os.ReadFile(readsPath); !bytes.Equal(before, after) {
		t.Error("the reads file was modified")
	}
}

// Each common mistake is a usage error naming the flag, file or value, in words a person
// reads (no Go type names).
func TestBalanceVerbErrors(t *testing.T) {
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 6, Days: 2, Customers: 10})
	cfgPath, readsPath := writeDistrict(t, n)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	unknown := write("unknown.json", `{"name":"x","inlets":["in1"],"pipes":3}`)
	wrongKind := write("kind.json", `{"name":"x","inlets":"in1"}`)
	garbage := write("garbage.json", `{"name":`)
	noInlet := write("noinlet.json", `{"name":"x"}`)
	typo := write("typo.json", `{"name":"x","inlets":["in-typo"]}`)
	badReads := write("bad.csv", "meter,time,value\nin1,2026-01-05T00:00:00Z,1\nin1,monday,2\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--reads", readsPath}, "missing --district"},
		{[]string{"--district", cfgPath}, "missing --reads"},
		{[]string{"--district", filepath.Join(dir, "none.json"), "--reads", readsPath}, "none.json: no such file"},
		{[]string{"--district", cfgPath, "--reads", filepath.Join(dir, "none.csv")}, "none.csv: no such file"},
		{[]string{"--district", unknown, "--reads", readsPath}, `unknown field "pipes"`},
		{[]string{"--district", wrongKind, "--reads", readsPath}, `field "inlets" has the wrong kind of value`},
		{[]string{"--district", garbage, "--reads", readsPath}, "cut short"},
		{[]string{"--district", noInlet, "--reads", readsPath}, `needs "name" and at least one meter in "inlets"`},
		{[]string{"--district", typo, "--reads", readsPath}, `no reads of meter "in-typo"`},
		{[]string{"--district", cfgPath, "--reads", badReads}, `bad.csv: line 3: time "monday"`},
		{[]string{"--district", cfgPath, "--reads", readsPath, "--from", "yesterday"}, `--from "yesterday" is not RFC 3339`},
		{[]string{"--district", cfgPath, "--reads", readsPath, "--from", "2026-01-06T00:00:00Z", "--to", "2026-01-05T00:00:00Z"}, "--to must come after --from"},
		{[]string{"--district", cfgPath, "--reads", readsPath, "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-06T00:00:00Z"}, "do not cover the period"},
		{[]string{"--district", cfgPath, "--reads", readsPath, "extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		code, _, errs := balanceRun(t, c.args...)
		if code != ExitError || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", c.args, code, errs, c.want)
		}
		for _, goism := range []string{": json:", "Go value", "analytics.", "strconv.", "*fs.", "cbor"} {
			if strings.Contains(errs, goism) {
				t.Errorf("%v: message %q speaks Go (%q)", c.args, errs, goism)
			}
		}
	}
}
