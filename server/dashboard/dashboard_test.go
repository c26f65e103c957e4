package dashboard_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/internal/demo"
	"github.com/fieldseal/fieldseal/internal/testenv"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/store"
)

const chromium = "/usr/bin/chromium"

// A short demo run, then the dashboard as an operator sees it: the meter whose cover was
// opened is listed as tampered, its page shows the cover-open entry highlighted and the
// register chart; headless Chromium follows the demo's dashboard link (?token=) through the
// server's authentication, renders the page and saves a screenshot (to $FIELDSEAL_ARTIFACTS
// when set, so CI can keep it).
func TestDashboardShowsTamperedMeter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 12 s demo")
	}
	haveChromium := true
	if _, err := os.Stat(chromium); err != nil {
		haveChromium = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
		if victim == "" {
			t.Fatal("no cover-open scenario in the demo")
		}
		// 1. Through the real server, authenticated by the token: ?token= becomes the cookie.
		u, _ := url.Parse(r.Dashboard)
		tok := u.Query().Get("token")
		base := u.Scheme + "://" + u.Host
		body := get(t, base+"/ui/devices/"+victim, tok)
		for _, want := range []string{`<span class="state tampered">tampered</span>`, `<tr class="tamper">`, "<b>cover-open</b>", "<svg", "Evidence log"} {
			if !strings.Contains(body, want) {
				t.Errorf("device page lacks %q", want)
			}
		}
		fleet := get(t, base+"/", tok)
		if !strings.Contains(fleet, victim) || !strings.Contains(fleet, "open alerts") {
			t.Errorf("fleet page does not list %s among devices needing attention", victim)
		}
		for _, p := range []string{"/ui/alerts", "/ui/visits", "/ui/devices?state=tampered"} {
			get(t, base+p, tok)
		}
		if resp, err := http.Get(base + "/ui/devices/" + victim); err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("dashboard without a token: %s, want 401", resp.Status)
			}
		}
		if !haveChromium {
			return
		}
		// The first visit from a link: ?token= is admitted once and becomes the cookie.
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if resp, err := noRedirect.Get(base + "/ui/devices/" + victim + "?token=" + url.QueryEscape(tok)); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 || resp.Cookies()[0].Name != dashboard.TokenCookie {
				t.Errorf("?token= landing: %s, cookies %v", resp.Status, resp.Cookies())
			}
			if loc := resp.Header.Get("Location"); strings.Contains(loc, "token") {
				t.Errorf("redirect keeps the token in the address: %s", loc)
			}
		}
		if !haveChromium {
			return
		}
		// 2. In a browser, exactly as an operator follows the demo's link: through the
		// server's authentication, ?token= on the first load, the cookie after the redirect.
		out := os.Getenv("FIELDSEAL_ARTIFACTS")
		if out == "" {
			out = t.TempDir()
		}
		png := filepath.Join(out, "dashboard-"+victim+".png")
		page := base + "/ui/devices/" + victim + "?token=" + url.QueryEscape(tok)
		cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
		defer ccancel()
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars",
			"--user-data-dir=" + t.TempDir()}
		shot, err := exec.CommandContext(cctx, chromium, append(args, "--screenshot="+png, "--window-size=1280,900", page)...).CombinedOutput()
		if err != nil {
			t.Fatalf("chromium screenshot: %v\n%s", err, shot)
		}
		img, err := os.ReadFile(png)
		if err != nil || len(img) < 10_000 || !bytes.HasPrefix(img, []byte("\x89PNG")) {
			t.Fatalf("screenshot %s: %d bytes, %v", png, len(img), err)
		}
		dom, err := exec.CommandContext(cctx, chromium, append(args, "--dump-dom", page)...).Output()
		if err != nil {
			t.Fatalf("chromium dump-dom: %v", err)
		}
		if !strings.Contains(string(dom), "tampered") || !strings.Contains(string(dom), "cover-open") {
			t.Errorf("rendered page lacks the tampered state or its evidence")
		}
		t.Logf("screenshot of %s: %s (%d bytes)", victim, png, len(img))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the demo ended without a verdict")
	}
	if !haveChromium {
		testenv.SkipOrFail(t, chromium+" not found (Debian package chromium): page content checked, no screenshot")
	}
}

func get(t *testing.T, u, tok string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.AddCookie(&http.Cookie{Name: dashboard.TokenCookie, Value: tok})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", u, resp.Status, b)
	}
	return string(b)
}
