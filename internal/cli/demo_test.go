package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/internal/testenv"
)

// TestDemo runs the README's main job as CI does: `fieldseal demo --meters 200 --for 30s
// --json`. Every injected attack must be detected and no honest meter may alarm.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 30 s")
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := Run(ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"demo", "--meters", "200", "--for", "30s", "--json"})
	var r struct {
		Scenarios []struct {
			Name, Device, State, Reason, Expect string
			InjectedAt                          *time.Time `json:"injected_at"`
			DetectedAt                          *time.Time `json:"detected_at"`
			Detected, OK                        bool
		}
		FalseAlarms int      `json:"false_alarms"`
		FalseDevs   []string `json:"false_alarm_devices"`
		Meters      int
		OverLoRaWAN int `json:"over_lorawan"`
		Reports     int64
		OK          bool
		Inspections []struct {
			District string `json:"district"`
			List     []struct {
				Device  string `json:"device"`
				Flagged bool   `json:"flagged"`
			} `json:"list"`
			Alarms []struct {
				Kind        string    `json:"kind"`
				At          time.Time `json:"at"`
				StartLatest time.Time `json:"start_latest"`
			} `json:"alarms"`
		} `json:"inspections"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("exit %d, output is not the JSON verdict: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	t.Logf("progress:\n%s", errb.String())
	assertSnakeCase(t, "demo --json", out.Bytes())
	if strings.Contains(out.String(), "token=") || strings.Contains(out.String(), "dashboard") {
		t.Errorf("demo --json links to the dashboard of a server that has stopped:\n%s", out.String())
	}
	if r.Meters != 200 || r.Reports < 200*50 {
		t.Errorf("%d meters sent %d reports; want 200 meters reporting every 15 virtual minutes over a virtual day", r.Meters, r.Reports)
	}
	if r.OverLoRaWAN != 100 {
		t.Errorf("%d meters over LoRaWAN; want district d01's 100 (internal/demo tests that district)", r.OverLoRaWAN)
	}
	want := map[string]bool{"meter-bypass": true, "code-edit-restore": true, "cover-open": true, "service-visit": true,
		"replayed-report": true, "magnet": true, "log-truncation": true, "silent-meter": true}
	for _, s := range r.Scenarios {
		delete(want, s.Name)
		line := s.Name + " on " + s.Device + ": " + s.Reason + ", state " + s.State
		switch {
		case !s.OK:
			t.Errorf("FAILED %s", line)
		case s.Expect == "alarm" && (!s.Detected || s.DetectedAt == nil || s.InjectedAt == nil || s.DetectedAt.Before(s.InjectedAt.Add(-time.Second))):
			t.Errorf("%s: ok but detection times are wrong: %v → %v", line, s.InjectedAt, s.DetectedAt)
		default:
			t.Logf("ok %s", line)
		}
	}
	for n := range want {
		t.Errorf("scenario %s missing from the verdict", n)
	}
	// The inspection list sends crews only to the attacked meters: an honest meter flagged
	// for a visit is a crew at the wrong door.
	attacked := map[string]bool{}
	for _, s := range r.Scenarios {
		if s.Expect == "alarm" {
			attacked[s.Device] = true
		}
	}
	for _, in := range r.Inspections {
		for _, c := range in.List {
			if c.Flagged && !attacked[c.Device] {
				t.Errorf("%s: honest meter %s flagged for a visit", in.District, c.Device)
			}
		}
	}
	// Never an effect before its cause: the only change in the town's losses is the bypass,
	// so a loss-rise alarm fires, and its start is estimated, no earlier than the bypass.
	var bypassAt *time.Time
	var bypassDistrict string
	for _, s := range r.Scenarios {
		if s.Name == "meter-bypass" {
			bypassAt, bypassDistrict = s.InjectedAt, s.Device[:3]
		}
	}
	for _, in := range r.Inspections {
		for _, a := range in.Alarms {
			if a.Kind != analytics.AlarmLossRise {
				continue
			}
			switch {
			case in.District != bypassDistrict || bypassAt == nil:
				t.Errorf("district %s: loss-rise alarm at %s with no change in its losses", in.District, a.At)
			case a.At.Before(*bypassAt) || a.StartLatest.Before(*bypassAt):
				t.Errorf("district %s: loss-rise alarm at %s (start no later than %s) before the bypass at %s", in.District, a.At, a.StartLatest, bypassAt)
			}
		}
	}
	if r.FalseAlarms != 0 {
		t.Errorf("%d false alarms: %s", r.FalseAlarms, strings.Join(r.FalseDevs, ", "))
	}
	if code != ExitOK || !r.OK {
		t.Errorf("exit code %d, ok %v; want 0 and true", code, r.OK)
	}
}

// TestDemoMicroPython adds meters running the real MicroPython guard (WebAssembly port
// under Node.js) to a short demo: they report to the same server, the honest ones stay
// trusted and an edit-and-restore on one of them is caught.
func TestDemoMicroPython(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo runs for 15 s")
	}
	testenv.Node(t)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	code := Run(ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"demo", "--meters", "50", "--for", "15s", "--micropython", "2", "--json"})
	var r struct {
		Scenarios []struct {
			Name, Device, Reason string
			OK                   bool
		}
		MicroPython string `json:"micropython"`
		FalseAlarms int    `json:"false_alarms"`
		OK          bool
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out.String(), errb.String())
	}
	if !strings.HasPrefix(r.MicroPython, "2 meters run the MicroPython guard") {
		t.Fatalf("micropython: %q", r.MicroPython)
	}
	found := false
	for _, s := range r.Scenarios {
		if s.Name == "mp-code-edit-restore" {
			found = true
			if !s.OK {
				t.Errorf("edit-and-restore on %s not caught: %s", s.Device, s.Reason)
			}
		}
	}
	if !found {
		t.Error("no MicroPython scenario in the verdict")
	}
	if code != ExitOK || !r.OK || r.FalseAlarms != 0 {
		t.Errorf("exit %d, ok %v, false alarms %d; scenarios %+v", code, r.OK, r.FalseAlarms, r.Scenarios)
	}
}

// The same --seed tells the same story: the verdict table, times included, is the same on
// every run, however the machine's load delays the simulation.
func TestDemoSameSeedSameTable(t *testing.T) {
	if testing.Short() {
		t.Skip("two demo runs of 8 s")
	}
	table := func() string {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		code := Run(ctx, &Env{Stdout: &out, Stderr: &errb}, []string{"demo", "--meters", "100", "--for", "8s", "--seed", "7"})
		if code != ExitOK {
			t.Fatalf("demo exit %d:\n%s\n%s", code, out.String(), errb.String())
		}
		s := out.String()
		start, end := strings.Index(s, "SCENARIO"), strings.Index(s, "verdict:")
		if start < 0 || end < start {
			t.Fatalf("no verdict table in:\n%s", s)
		}
		return s[start:end]
	}
	first, second := table(), table()
	if first != second {
		t.Fatalf("the same seed gave two different tables:\n%s\n---\n%s", first, second)
	}
	if !strings.Contains(first, "code-edit-restore") || !strings.Contains(first, "silent-meter") {
		t.Fatalf("the table lacks scenarios:\n%s", first)
	}
	t.Logf("\n%s", first)
}

// assertSnakeCase: see testenv.AssertSnakeCase.
func assertSnakeCase(t *testing.T, what string, data []byte) {
	t.Helper()
	testenv.AssertSnakeCase(t, what, data)
}
