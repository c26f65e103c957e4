package server_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// browser is a console client: a cookie jar, no automatic redirects, and the CSRF token
// of the last page it read.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(req *http.Request) (int, string, *http.Response) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRe.FindStringSubmatch(string(body)); m != nil {
		b.csrf = m[1]
	}
	return resp.StatusCode, string(body), resp
}

func (b *browser) get(path string) (int, string, *http.Response) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

// post sends a form as a browser of this site would (Origin set), with the page's CSRF
// token unless the form carries its own.
func (b *browser) post(path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	return b.do(req)
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	if code, body, resp := b.post("/ui/login", url.Values{"token": {token}, "next": {"/ui/"}}); code != http.StatusSeeOther {
		b.t.Fatalf("sign-in: %d %s %v", code, body, resp.Header)
	}
	if code, _, _ := b.get("/ui/"); code != 200 {
		b.t.Fatalf("fleet after sign-in: %d", code)
	}
}

// token creates an API token of role through the API, as an admin would.
func (e *env) token(name, role string) string {
	e.t.Helper()
	var out struct{ Token string }
	if code := e.api("POST", "/api/v1/tokens", e.s.AdminToken(), map[string]string{"name": name, "role": role}, &out); code != 201 {
		e.t.Fatalf("create token %s: %d", name, code)
	}
	return out.Token
}

// tampered provisions a meter, reports once, then reports an opened cover.
func (e *env) tampered(id string) *device {
	e.t.Helper()
	d := e.provision(id, "watermeter")
	if e.man != nil {
		d.man = wire.ManifestRef{Product: "watermeter", Version: e.man.Version, Root: e.man.Root}
	}
	d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: 1200})
	e.mustSend(d)
	d.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	e.send(d, nil)
	if st := e.device(id).State; st != store.StateTampered {
		e.t.Fatalf("%s is %s, want tampered", id, st)
	}
	return d
}

func registerManifest(e *env) {
	e.t.Helper()
	signed, m := e.manifest("watermeter", 1, "app", nil)
	if _, err := e.s.RegisterManifest(context.Background(), signed); err != nil {
		e.t.Fatal(err)
	}
	e.man = m
}

// Without a session every console page sends the browser to sign in and every action is
// refused; a token in the URL is not a sign-in; a wrong token gets no cookie; a cookie
// altered by one byte, signed out, or whose API token was deleted is no session.
func TestThreatS10_ConsoleNeedsSignIn(t *testing.T) {
	e := newEnv(t)
	registerManifest(e)
	e.tampered("m-1")
	b := newBrowser(t, e.base)
	for _, p := range []string{"/", "/ui/", "/ui/devices?q=m", "/ui/devices.csv", "/ui/devices/m-1", "/ui/devices/m-1/checkin", "/ui/alerts", "/ui/visits", "/ui/reasons", "/ui/?token=" + e.s.AdminToken()} {
		code, _, resp := b.get(p)
		if code != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login?next=") {
			t.Errorf("GET %s without a session: %d %s, want 303 to /ui/login", p, code, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/ui/alerts/1/ack", "/ui/devices/m-1/clear", "/ui/devices/m-1/visits", "/ui/visits/v-1/close", "/ui/logout"} {
		if code, _, _ := b.post(p, url.Values{"csrf": {"x"}, "reason": {"r"}}); code != http.StatusUnauthorized {
			t.Errorf("POST %s without a session: %d, want 401", p, code)
		}
	}
	code, body, resp := b.post("/ui/login", url.Values{"token": {"fst_wrong"}})
	if code != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "not valid") {
		t.Errorf("wrong token: %d, cookies %v", code, resp.Cookies())
	}

	op := e.token("olga", server.RoleOperator)
	code, _, resp = b.post("/ui/login", url.Values{"token": {op}, "next": {"//evil.example/x"}})
	if code != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("sign-in with an off-site next: %d %q, want 303 to /ui/", code, resp.Header.Get("Location"))
	}
	c := resp.Cookies()[0]
	if c.Name != dashboard.SessionCookie || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || strings.Contains(c.Value, op) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure on plain HTTP, not the token", c)
	}
	if code, body, _ := b.get("/ui/devices/m-1"); code != 200 || !strings.Contains(body, "olga (operator)") {
		t.Fatalf("device page after sign-in: %d", code)
	}
	// One byte of the cookie changed: no session.
	forged := newBrowser(t, e.base)
	v := []byte(c.Value)
	v[5] ^= 1
	u, _ := url.Parse(e.base)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: dashboard.SessionCookie, Value: string(v), Path: "/"}})
	if code, _, _ := forged.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("altered session cookie: %d, want 303 to sign in", code)
	}
	// The API takes no session cookie.
	req, _ := http.NewRequest("GET", e.base+"/api/v1/devices", nil)
	req.AddCookie(c)
	if code, _, _ := b.do(req); code != http.StatusUnauthorized {
		t.Errorf("API with the console cookie: %d, want 401", code)
	}
	// Sign out: the same cookie, replayed, is no session.
	b.get("/ui/")
	if code, _, _ := b.post("/ui/logout", nil); code != http.StatusSeeOther {
		t.Fatalf("sign out: %d", code)
	}
	replay := newBrowser(t, e.base)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	if code, _, _ := replay.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("cookie after sign-out: %d, want 303", code)
	}
	// Deleting the API token ends its sessions.
	b2 := newBrowser(t, e.base)
	b2.signIn(op)
	if code := e.api("DELETE", "/api/v1/tokens/olga", e.s.AdminToken(), nil, nil); code != 204 {
		t.Fatalf("delete token: %d", code)
	}
	if code, _, _ := b2.get("/ui/"); code != http.StatusSeeOther {
		t.Errorf("session of a deleted token: %d, want 303", code)
	}
}

// A state-changing request needs the session's CSRF token and must come from this site;
// a refused one changes nothing.
func TestThreatS10_ConsoleCSRF(t *testing.T) {
	e := newEnv(t)
	registerManifest(e)
	e.tampered("m-1")
	b := newBrowser(t, e.base)
	b.signIn(e.token("olga", server.RoleOperator))
	b.get("/ui/devices/m-1")
	other := newBrowser(t, e.base)
	other.signIn(e.token("otto", server.RoleOperator))
	other.get("/ui/devices/m-1")
	id := e.alerts("m-1")[0].ID
	path := "/ui/alerts/" + itoa(id) + "/ack"
	for name, form := range map[string]url.Values{
		"no token":                {"csrf": {""}},
		"a wrong token":           {"csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"another session's token": {"csrf": {other.csrf}},
	} {
		if code, _, _ := b.post(path, form); code != http.StatusForbidden {
			t.Errorf("ack with %s: %d, want 403", name, code)
		}
	}
	req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(url.Values{"csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if code, _, _ := b.do(req); code != http.StatusForbidden {
		t.Errorf("ack from another origin: %d, want 403", code)
	}
	if e.alerts("m-1")[0].AckedBy != "" {
		t.Fatal("a refused request acknowledged the alert")
	}
	if code, _, _ := b.post(path, url.Values{"device": {"m-1"}}); code != http.StatusSeeOther {
		t.Fatalf("ack with the right token: %d", code)
	}
	if by := e.alerts("m-1")[0].AckedBy; by != "olga" {
		t.Fatalf("acked by %q, want olga", by)
	}
	// A confirmation shows only as this server wrote it: a link cannot plant text.
	if _, page, _ := b.get("/ui/devices/m-1?done=Call+0800+to+confirm"); strings.Contains(page, "0800") {
		t.Error("the device page shows an unsigned confirmation from the URL")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Each console action admits the roles of the API route it stands for.
func TestConsoleRolesMatchAPI(t *testing.T) {
	e := newEnv(t)
	routes := map[string][]string{}
	for _, rt := range httpapi.New(e.s).Routes() {
		routes[rt.Method+" "+rt.Path] = rt.Roles
	}
	for action, route := range dashboard.ActionRoutes {
		roles, ok := routes[route]
		if !ok {
			t.Fatalf("%s: no route %s", action, route)
		}
		for _, role := range server.Roles {
			if dashboard.Allowed(role, action) != slices.Contains(roles, role) {
				t.Errorf("%s by %s: console %v, API route %s admits %v", action, role, dashboard.Allowed(role, action), route, roles)
			}
		}
	}
}

// As a viewer the device page has no action forms and both the console and the API
// refuse every action; a technician may book and close visits but not clear or
// acknowledge; an operator may do all four.
func TestConsoleRoles(t *testing.T) {
	e := newEnv(t)
	registerManifest(e)
	e.tampered("m-1")
	alert := itoa(e.alerts("m-1")[0].ID)
	type act struct {
		name, form, console, api string
		body                     map[string]any
		values                   url.Values
	}
	acts := []act{
		{dashboard.ActAck, `action="/ui/alerts/` + alert + `/ack"`, "/ui/alerts/" + alert + "/ack", "/api/v1/alerts/" + alert + "/ack", nil, url.Values{"device": {"m-1"}}},
		{dashboard.ActClear, `action="/ui/devices/m-1/clear"`, "/ui/devices/m-1/clear", "/api/v1/devices/m-1/clear", map[string]any{"result": "seen"}, url.Values{"reason": {"seen"}}},
		{dashboard.ActVisitOpen, `action="/ui/devices/m-1/visits"`, "/ui/devices/m-1/visits", "/api/v1/devices/m-1/visits", map[string]any{"work_order": "WO-1"}, url.Values{"work_order": {"WO-1"}, "window_h": {"2"}}},
	}
	for _, role := range []string{server.RoleViewer, server.RoleTechnician} {
		tok := e.token("u-"+role, role)
		b := newBrowser(t, e.base)
		b.signIn(tok)
		_, page, _ := b.get("/ui/devices/m-1")
		for _, a := range acts {
			allowed := role == server.RoleTechnician && a.name == dashboard.ActVisitOpen
			if strings.Contains(page, a.form) != allowed {
				t.Errorf("%s: form %q shown %v, want %v", role, a.name, !allowed, allowed)
			}
			if allowed {
				continue
			}
			if code, _, _ := b.post(a.console, a.values); code != http.StatusForbidden {
				t.Errorf("%s: console %s: %d, want 403", role, a.name, code)
			}
			if code := e.api("POST", a.api, tok, a.body, nil); code != http.StatusForbidden {
				t.Errorf("%s: API %s: %d, want 403", role, a.api, code)
			}
		}
	}
	if st := e.device("m-1"); st.State != store.StateTampered || e.alerts("m-1")[0].AckedBy != "" {
		t.Fatalf("refused actions changed the device: %s, acked by %q", st.State, e.alerts("m-1")[0].AckedBy)
	}
}

// The session cookie is Secure when the console is served over TLS.
func TestConsoleCookieSecureUnderTLS(t *testing.T) {
	e := newEnv(t)
	ts := httptest.NewUnstartedServer(httpapi.New(e.s).Handler())
	ts.StartTLS()
	defer ts.Close()
	b := newBrowser(t, ts.URL)
	b.c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	code, _, resp := b.post("/ui/login", url.Values{"token": {e.s.AdminToken()}})
	if code != http.StatusSeeOther || len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure {
		t.Fatalf("sign-in over TLS: %d, cookies %+v: want one Secure cookie", code, resp.Cookies())
	}
}
