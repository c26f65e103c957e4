package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auditRun runs `fieldseal audit` with captured output.
func auditRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), &Env{Stdout: &out, Stderr: &errb, Stdin: strings.NewReader("")}, append([]string{"audit"}, args...))
	return code, out.String(), errb.String()
}

func auditFixture(name string) string { return filepath.Join("..", "..", "audit", "testdata", name) }

func TestAuditExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{auditFixture("stm32_hardened")}, ExitOK},
		{[]string{auditFixture("esp32_secure"), "--port", "esp32"}, ExitOK},
		// The rp2350 template keeps its state slots on the filesystem (its boot file hands the
		// adapter no slot device), so the audit says state-slots is open: exit 1.
		{[]string{filepath.Join("..", "..", "examples", "boards", "rp2350")}, ExitFound},
		{[]string{auditFixture("pyboard_default")}, ExitFound},
		{[]string{auditFixture("rp2040_pico")}, ExitFound},
		{[]string{auditFixture("include_unresolved")}, ExitFound}, // unknown is never a pass
		{[]string{auditFixture("malformed_if"), "--json"}, ExitFound},
		{[]string{auditFixture("does-not-exist")}, ExitError},
		{[]string{auditFixture("stm32_hardened"), "--port", "esp32"}, ExitError},
		{[]string{auditFixture("ambiguous")}, ExitError},
		{[]string{auditFixture("samd_board")}, ExitError}, // unsupported port: no stm32 verdicts
		{[]string{auditFixture("stm32_hardened"), "--variant", "NOPE"}, ExitError},
		{[]string{}, ExitError},
		{[]string{auditFixture("stm32_hardened"), "--bogus"}, ExitError},
	} {
		code, _, errs := auditRun(t, tc.args...)
		if code != tc.want {
			t.Errorf("audit %v = %d, want %d (stderr %q)", tc.args, code, tc.want, errs)
		}
		if tc.want == ExitError && errs == "" {
			t.Errorf("audit %v: exit 2 without a message", tc.args)
		}
	}
}

func TestAuditJSONShape(t *testing.T) {
	code, out, errs := auditRun(t, auditFixture("pyboard_default"), "--json")
	if code != ExitFound {
		t.Fatalf("code %d: %s", code, errs)
	}
	assertSnakeCase(t, "audit --json", []byte(out))
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"port", "board", "resolver", "checks", "score", "verdict"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("missing key %q", k)
		}
	}
	for k := range raw {
		switch k {
		case "port", "board", "resolver", "checks", "score", "verdict", "variant", "warnings":
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	var checks []map[string]string
	if err := json.Unmarshal(raw["checks"], &checks); err != nil || len(checks) == 0 {
		t.Fatalf("checks: %v", err)
	}
	for _, c := range checks {
		if len(c) != 6 {
			t.Errorf("check keys %v", c)
		}
		for _, k := range []string{"id", "title", "status", "evidence", "attack", "fix"} {
			if c[k] == "" {
				t.Errorf("check %s: empty %s", c["id"], k)
			}
		}
		switch c["status"] {
		case "open", "closed", "unknown":
		default:
			t.Errorf("status %q", c["status"])
		}
	}
	var port, score string
	json.Unmarshal(raw["port"], &port)
	json.Unmarshal(raw["score"], &score)
	if port != "stm32" || score != "4/18" {
		t.Errorf("port %q score %q", port, score)
	}
}

func TestAuditHumanTable(t *testing.T) {
	code, out, _ := auditRun(t, auditFixture("rp2040_pico"))
	if code != ExitFound {
		t.Fatalf("code %d", code)
	}
	for _, want := range []string{"STATUS", "OPEN    secure-boot", "use RP2350 with OTP secure boot or an external secure element", "score 17/18"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A board whose every check is closed but whose firmware does not link (esp32, compiler off,
// no board source defining the REPL entry points main.c calls) is not passed: exit 1, and the
// report says why before the table.
func TestAuditFailsABoardThatDoesNotBuild(t *testing.T) {
	dir := t.TempDir()
	src := auditFixture("esp32_secure")
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "mpconfigboard.cmake" {
			data = []byte(strings.Replace(string(data), "set(MICROPY_SOURCE_BOARD", "set(UNUSED_SOURCE", 1))
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ := auditRun(t, dir)
	if code != ExitFound || !strings.Contains(out, "build error: ") || !strings.Contains(out, "score 22/22 — does not build") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}
