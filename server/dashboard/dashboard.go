// Package dashboard is the operator's console that `fieldseal server` serves (and the demo,
// through the same server): sign-in and sessions, the fleet list (counts by state, devices
// needing attention first, search, filters, keyset paging, CSV), device pages (evidence
// in sentences, the register chart, software, visits), alerts and visits, the actions an
// operator takes (acknowledge, clear a tamper, book and close a service visit) and a
// printable check-in report. The composition root mounts it on the server with
// srv.SetDashboard(dashboard.ForServer(srv)). Server-rendered HTML from embedded templates, one small
// style sheet and no script. It reads through store.Store and acts through Backend, the
// server's audited operations, so a click and the matching API call are the same thing.
package dashboard

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Backend is what the console needs of the server (backend.go): sign-in, the role
// rules, and the audited operations behind the API's action routes (the server checks the
// role again).
type Backend interface {
	SignIn(ctx context.Context, secret string) (User, error)
	Lookup(ctx context.Context, tokenHash []byte) (User, error)
	// Redeem spends a one-time sign-in code (the demo's link).
	Redeem(code string) (User, bool)
	Allowed(role, action string) bool

	AckAlert(ctx context.Context, u User, id int64) error
	ClearTamper(ctx context.Context, u User, dev, result string) error
	BookVisit(ctx context.Context, u User, dev, workOrder, technician string, window time.Duration) (*store.Visit, error)
	CloseVisit(ctx context.Context, u User, visit, sealNumber, result string) (*store.Visit, error)

	// The water balance the server refreshes on its schedule (analytics/districts).
	DistrictResult(ctx context.Context, id string) (*server.DistrictResult, error)
	OnInspectionList(dev string) (analytics.Candidate, bool)
}

// Options configure the console.
type Options struct {
	Backend    Backend
	SessionKey []byte            // MACs session cookies and CSRF tokens; replicas must share it
	ServerPub  ed25519.PublicKey // checks the receipts of an uploaded device log at check-in
	Now        func() time.Time  // the fleet's clock (the demo's is compressed); sessions use real time
	// ThreatModelURL is where reason names link to (their THREAT_MODEL row).
	ThreatModelURL string
}

// ForServer is the console of srv, as `fieldseal server` and the demo mount it:
//
//	srv.SetDashboard(dashboard.ForServer(srv))
func ForServer(srv *server.Server) http.Handler {
	return New(srv.Store(), Options{Backend: &console{s: srv, st: srv.Store()}, SessionKey: srv.ConsoleSessionKey(), ServerPub: srv.PublicKey(), Now: srv.Now})
}

// DefaultThreatModelURL is the project's published threat model.
const DefaultThreatModelURL = "https://github.com/fieldseal/fieldseal/blob/main/docs/THREAT_MODEL.md"

type dash struct {
	st      store.Store
	be      Backend
	now     func() time.Time
	sess    *sessions
	pub     ed25519.PublicKey
	threats string
	tmpl    *template.Template
	counts  countCache
}

// New returns the console's handler for "/" and "/ui/...".
func New(st store.Store, o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ThreatModelURL == "" {
		o.ThreatModelURL = DefaultThreatModelURL
	}
	if o.Backend == nil || len(o.SessionKey) < 16 {
		panic("dashboard: Backend and a SessionKey of at least 16 bytes are required")
	}
	d := &dash{st: st, be: o.Backend, now: o.Now, sess: &sessions{key: o.SessionKey, ended: map[string]time.Time{}}, pub: o.ServerPub, threats: o.ThreatModelURL}
	d.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"time":   fmtTime,
		"hm":     func(t time.Time) string { return t.UTC().Format("15:04") },
		"unix":   func(s uint64) string { return time.Unix(int64(s), 0).UTC().Format("2006-01-02 15:04:05") },
		"hex":    func(b []byte) string { return hex.EncodeToString(b[:min(len(b), 6)]) },
		"hexall": func(b []byte) string { return hex.EncodeToString(b) },
		"short":  short,
		"reason": func(name string) Reason { return lookupReason(name) },
		"threat": d.threatURL,
		"inspect": func(dev string) *analytics.Candidate {
			if c, ok := d.be.OnInspectionList(dev); ok {
				return &c
			}
			return nil
		},
		"f1": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	}).ParseFS(templateFS, "templates/*.html"))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/login", d.loginPage)
	mux.HandleFunc("POST /ui/login", d.login)
	mux.HandleFunc("POST /ui/logout", d.act(actSignOut, d.logout))
	mux.HandleFunc("GET /{$}", d.view(d.fleet))
	mux.HandleFunc("GET /ui/{$}", d.view(d.fleet))
	mux.HandleFunc("GET /ui/devices", d.view(d.fleet))
	mux.HandleFunc("GET /ui/devices.csv", d.view(d.fleetCSV))
	mux.HandleFunc("GET /ui/devices/{id}", d.view(d.device))
	mux.HandleFunc("GET /ui/devices/{id}/checkin", d.view(d.checkinPage))
	mux.HandleFunc("POST /ui/devices/{id}/checkin", d.act(ActCheckIn, d.checkin))
	mux.HandleFunc("POST /ui/devices/{id}/clear", d.act(ActClear, d.clear))
	mux.HandleFunc("POST /ui/devices/{id}/visits", d.act(ActVisitOpen, d.bookVisit))
	mux.HandleFunc("POST /ui/visits/{id}/close", d.act(ActVisitClose, d.closeVisit))
	mux.HandleFunc("POST /ui/alerts/{id}/ack", d.act(ActAck, d.ack))
	mux.HandleFunc("GET /ui/alerts", d.view(d.alerts))
	mux.HandleFunc("GET /ui/visits", d.view(d.visits))
	mux.HandleFunc("GET /ui/reasons", d.view(d.reasons))
	mux.HandleFunc("GET /ui/balance", d.view(d.districts))
	mux.HandleFunc("GET /ui/balance/{id}", d.view(d.balance))
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/", http.FileServerFS(staticFS)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		d.problem(w, r, http.StatusNotFound, "No such page.")
	})
	return mux
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// page is what every template's frame needs.
type page struct {
	Title, Nav, Now string
	User            *who
	CSRF            string
	Can             map[string]bool
}

func (d *dash) page(r *http.Request, title, nav string) page {
	p := page{Title: title, Nav: nav, Now: d.now().UTC().Format("2006-01-02 15:04"), Can: map[string]bool{}}
	if u := current(r.Context()); u != nil {
		p.User, p.CSRF = u, u.csrf
		for _, a := range []string{ActAck, ActClear, ActVisitOpen, ActVisitClose, ActCheckIn} {
			p.Can[a] = d.be.Allowed(u.Role, a)
		}
	}
	return p
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (d *dash) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var b bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

// problem answers with a page that says what went wrong and what to do.
func (d *dash) problem(w http.ResponseWriter, r *http.Request, code int, msg string) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	var b bytes.Buffer
	d.tmpl.ExecuteTemplate(&b, "problem.html", struct {
		page
		Code    int
		Message string
	}{d.page(r, http.StatusText(code), ""), code, msg})
	w.Write(b.Bytes())
}

func (d *dash) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrNotFound) {
		d.problem(w, r, http.StatusNotFound, "Not found: "+err.Error())
		return
	}
	d.problem(w, r, http.StatusInternalServerError, "The store failed: "+err.Error())
}
