package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fieldseal/fieldseal/internal/demo"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/store"
)

const chromium = "/usr/bin/chromium"

// screenshotDir is where the console's screenshots go: $FIELDSEAL_ARTIFACTS/console when
// CI sets it (CI keeps that folder), else bench/out/screenshots (not committed).
func screenshotDir(t *testing.T) string {
	dir := filepath.Join(testenv.RepoRoot(), "bench", "out", "screenshots")
	if a := os.Getenv("FIELDSEAL_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// axeScript is axe-core's browser build (npm package axe-core, installed by ./test.sh), or
// the file $AXE_CORE_JS names.
func axeScript(t *testing.T) string {
	p := os.Getenv("AXE_CORE_JS")
	if p == "" {
		p = filepath.Join(testenv.RepoRoot(), "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		testenv.SkipOrFail(t, "axe-core not found at "+p+" (run ./test.sh, which installs the pinned npm packages, or set AXE_CORE_JS)")
	}
	return string(b)
}

// tab is one signed-in browser (its own cookie jar: a separate browser context).
type tab struct {
	t   *testing.T
	ctx context.Context
}

// do runs steps; a step that lost its node to a page still settling after the last
// navigation (the driver's node ids went stale before anything happened) is tried again.
func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for _, step := range steps {
		var err error
		for try := 0; try < 5; try++ {
			if _, err = chromedp.Run(b.ctx, step); err == nil || !strings.Contains(err.Error(), "Could not find node") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			b.t.Fatalf("%s: %v", what, err)
		}
	}
}

func (b *tab) eval(expr string, out any) {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr[:min(len(expr), 60)], err)
	}
	if err := json.Unmarshal(v, out); err != nil {
		b.t.Fatalf("evaluate %s: %v in %s", expr[:min(len(expr), 60)], err, v)
	}
}

func (b *tab) text() string {
	var s string
	b.eval(`document.body.innerText`, &s)
	return s
}

// waitText waits until the page says want (after a click that navigates).
func (b *tab) waitText(want string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var s string
		v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.readyState === "complete" && document.body ? document.body.innerText : ""`))
		if err == nil {
			s = v
		}
		if strings.Contains(s, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("page never said %q; it says:\n%s", want, b.text())
}

// shot saves a full-page screenshot at width px and checks that nothing scrolls sideways.
func (b *tab) shot(dir, name string, width int64) {
	b.t.Helper()
	b.do("viewport", chromedp.EmulateViewport(width, 900))
	var over struct{ Scroll, Client int }
	b.eval(`({Scroll: document.documentElement.scrollWidth, Client: document.documentElement.clientWidth})`, &over)
	if over.Scroll > over.Client {
		b.t.Errorf("%s at %d px scrolls sideways: content %d px wide", name, width, over.Scroll)
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 5000 {
		b.t.Fatalf("screenshot %s: %d bytes, %v", name, len(png), err)
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%d.png", name, width))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", file)
}

// axe runs axe-core on the page and fails on serious or critical violations.
func (b *tab) axe(script, page string) {
	b.t.Helper()
	var loaded bool
	b.eval(script+";\ntypeof axe === 'object'", &loaded)
	if !loaded {
		b.t.Fatal("axe-core did not load")
	}
	var res struct {
		Passes     int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []struct{ Target []any }
		}
	}
	b.eval(`axe.run(document).then(r => ({Passes: r.passes.length, Violations: r.violations.map(v => ({ID: v.id, Impact: v.impact || '', Help: v.help, Nodes: v.nodes.slice(0, 3).map(n => ({Target: n.target}))}))}))`, &res)
	if res.Passes < 10 {
		b.t.Fatalf("axe on %s checked only %d rules", page, res.Passes)
	}
	for _, v := range res.Violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("axe on %s: %s violation %s (%s) at %v", page, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			b.t.Logf("axe on %s: %s %s (%s)", page, v.Impact, v.ID, v.Help)
		}
	}
}

// The console in a real browser, on a real demo run: an operator signs in, finds the meter
// whose cover was opened, acknowledges its alert, books a visit, closes it with a seal
// number, clears the tamper with a reason and sees the device trusted again; a viewer sees
// no action and the API refuses the viewer's calls. Screenshots at 1280 and 390 px, no
// sideways scrolling at 390 px, and axe-core finds no serious or critical violation.
func TestConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 12 s demo and Chromium")
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.SkipOrFail(t, chromium+" not found (Debian package chromium)")
	}
	axeJS := axeScript(t)
	dir := screenshotDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var checked bool
	_, err := demo.Run(ctx, demo.Options{Meters: 100, For: 12 * time.Second, Hold: func(r *demo.Result, st store.Store) {
		checked = true
		var victim string
		for _, s := range r.Scenarios {
			if s.Name == "cover-open" {
				victim = s.Device
			}
		}
		if victim == "" || r.Dashboard == "" {
			t.Fatal("no cover-open scenario or no console link in the demo")
		}
		base := r.Dashboard[:strings.Index(r.Dashboard, "/ui/")]
		tokens := map[string]string{"olga": "operator", "vera": "viewer"}
		secrets := map[string]string{}
		for name, role := range tokens {
			secrets[name] = "fst_browser_test_" + name
			if err := st.PutAPIToken(ctx, store.APIToken{Hash: dashboard.HashToken(secrets[name]), Name: name, Role: role, Created: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}

		opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
			chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true), chromedp.Flag("hide-scrollbars", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900)}
		actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
		defer acancel()
		root, rcancel := chromedp.NewContext(actx)
		defer rcancel()
		if err := chromedp.Do(root); err != nil {
			t.Fatalf("start chromium: %v", err)
		}
		newTab := func() (*tab, context.CancelFunc) {
			c, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext())
			return &tab{t: t, ctx: c}, cancel
		}

		// The demo's link signs in once; a second use is refused.
		admin, c1 := newTab()
		defer c1()
		admin.do("demo link", chromedp.Navigate(r.Dashboard))
		admin.waitText("admin (admin)")
		again, c2 := newTab()
		defer c2()
		again.do("demo link again", chromedp.Navigate(r.Dashboard))
		again.waitText("already used")

		// The operator.
		op, c3 := newTab()
		defer c3()
		op.do("sign-in page", chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
		op.shot(dir, "sign-in", 390)
		op.axe(axeJS, "sign-in")
		op.do("sign in", chromedp.EmulateViewport(1280, 900), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), secrets["olga"]), chromedp.Submit(chromedp.CSS("#token")))
		op.waitText("olga (operator)")
		op.shot(dir, "fleet", 1280)
		op.shot(dir, "fleet", 390)
		op.axe(axeJS, "fleet")
		op.do("search", chromedp.EmulateViewport(1280, 900), chromedp.SendKeys(chromedp.CSS("#q"), victim), chromedp.Submit(chromedp.CSS("#q")))
		op.waitText("Download this view as CSV")
		op.do("open the meter", chromedp.Click(chromedp.CSS(`a[href="/ui/devices/`+victim+`"]`)))
		op.waitText("What the device's log shows")
		if s := op.text(); !strings.Contains(s, "Cover opened") || !strings.Contains(s, "tampered") {
			t.Errorf("device page lacks the cover-open sentence or the tampered state:\n%s", s[:min(len(s), 1500)])
		}
		op.shot(dir, "device-tampered", 1280)
		op.shot(dir, "device-tampered", 390)
		op.axe(axeJS, "device")
		op.do("viewport", chromedp.EmulateViewport(1280, 900))

		op.do("acknowledge", chromedp.WaitVisible(chromedp.CSS(`form[action$="/ack"] button`)), chromedp.Click(chromedp.CSS(`form[action$="/ack"] button`)))
		op.waitText("acknowledged.")
		op.do("book a visit", chromedp.SendKeys(chromedp.CSS("#wo"), "WO-7781"), chromedp.SendKeys(chromedp.CSS("#tech"), "Tomasz"),
			chromedp.Click(chromedp.CSS(`form[action$="/visits"] button`)))
		op.waitText("booked")
		op.do("close the visit", chromedp.SendKeys(chromedp.CSS(`input[name="seal_number"]`), "SEAL-004711"),
			chromedp.Click(chromedp.CSS(`form[action$="/close"] button`)))
		op.waitText("Visit closed with seal SEAL-004711")
		op.do("clear the tamper", chromedp.SendKeys(chromedp.CSS("#clear-reason"), "Cover opened by the tenant's plumber; meter inspected, nothing changed."),
			chromedp.Click(chromedp.CSS(`form[action$="/clear"] button`)))
		op.waitText("Tamper cleared")
		var state string
		op.eval(`document.querySelector('h1 .state').textContent`, &state)
		if state != store.StateTrusted {
			t.Errorf("after clearing, the page shows %q, want trusted", state)
		}
		if s := op.text(); !strings.Contains(s, "SEAL-004711") || !strings.Contains(s, "By olga") {
			t.Errorf("device page lacks the seal number or who acted")
		}
		op.shot(dir, "device-cleared", 1280)
		op.do("check-in report", chromedp.Navigate(base+"/ui/devices/"+victim+"/checkin"))
		op.waitText("What the server holds")
		op.shot(dir, "checkin", 1280)
		op.axe(axeJS, "check-in")
		op.do("search by seal", chromedp.Navigate(base+"/ui/devices?q=SEAL-004711"))
		op.waitText(victim)
		op.do("alerts", chromedp.Navigate(base+"/ui/alerts"))
		op.waitText("Alerts")
		op.shot(dir, "alerts", 390)
		op.axe(axeJS, "alerts")
		// Water balance: the demo configured its districts through the store as the API
		// does; the server refreshed them on its schedule.
		var bypassed string
		for _, s := range r.Scenarios {
			if s.Name == "meter-bypass" {
				bypassed = s.Device
			}
		}
		op.do("water balance", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/ui/balance"))
		op.waitText("District 1")
		op.do("open the district", chromedp.Click(chromedp.CSS(`a[href="/ui/balance/d01"]`)))
		op.waitText("Meters to inspect")
		var plotted struct{ Lines, Bars int }
		op.eval(`({Lines: document.querySelectorAll('.chart svg polyline').length, Bars: document.querySelectorAll('.chart svg rect').length})`, &plotted)
		if plotted.Lines != 2 || plotted.Bars == 0 {
			t.Errorf("balance plot has %d lines and %d loss bars, want 2 and some", plotted.Lines, plotted.Bars)
		}
		if s := op.text(); bypassed != "" && !strings.Contains(s, bypassed) {
			t.Errorf("the balance page's list lacks the bypassed meter %s:\n%s", bypassed, s[:min(len(s), 1500)])
		}
		op.shot(dir, "balance", 1280)
		op.shot(dir, "balance", 390)
		op.axe(axeJS, "balance")
		d, err := st.GetDevice(ctx, victim)
		if err != nil || d.State != store.StateTrusted {
			t.Fatalf("store: %s is %v (%v), want trusted", victim, d, err)
		}

		// The viewer: no action on the page, and the API refuses.
		view, c4 := newTab()
		defer c4()
		view.do("viewer sign-in", chromedp.Navigate(base+"/ui/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), secrets["vera"]), chromedp.Submit(chromedp.CSS("#token")))
		view.waitText("vera (viewer)")
		view.do("viewer opens the meter", chromedp.Navigate(base+"/ui/devices/"+victim))
		view.waitText("What the device's log shows")
		var forms int
		view.eval(`document.querySelectorAll('form[action*="/clear"], form[action*="/visits"], form[action*="/ack"], form[action*="/close"]').length`, &forms)
		if forms != 0 {
			t.Errorf("the viewer's device page has %d action forms", forms)
		}
		for _, p := range []string{"/api/v1/devices/" + victim + "/clear", "/api/v1/devices/" + victim + "/visits"} {
			req, _ := http.NewRequest("POST", base+p, bytes.NewReader([]byte(`{"result":"x","work_order":"x"}`)))
			req.Header.Set("Authorization", "Bearer "+secrets["vera"])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("viewer POST %s: %s, want 403", p, resp.Status)
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the demo ended without a verdict")
	}
}
