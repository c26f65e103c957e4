// Package dashboard is the fleet server's web UI: fleet overview (devices by state, open
// alerts), device pages (state history, the verified evidence log with tamper entries
// highlighted, the signed meter register over time as an SVG drawn on the server), alerts
// and service visits. Plain HTML from embedded templates, no script and no build step; it
// reads through the store.Store interface only. The server mounts it (server.Config.
// Dashboard) behind its own authentication.
package dashboard

import (
	"context"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// TokenCookie is the cookie the server's authentication reads.
const TokenCookie = "fieldseal_token"

// Options tune the dashboard.
type Options struct {
	Now func() time.Time // shown in the header; the demo's virtual clock
}

type dash struct {
	st   store.Store
	now  func() time.Time
	tmpl *template.Template
}

// New returns the dashboard handler for "/" and "/ui/...".
func New(st store.Store, o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &dash{st: st, now: o.Now}
	d.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"unix":  func(s uint64) string { return time.Unix(int64(s), 0).UTC().Format("2006-01-02 15:04:05") },
		"hex":   func(b []byte) string { return hex.EncodeToString(b[:min(len(b), 6)]) },
		"short": short,
		"base":  func() string { return "" },
	}).ParseFS(templateFS, "templates/*.html"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.fleet)
	mux.HandleFunc("GET /ui/{$}", d.fleet)
	mux.HandleFunc("GET /ui/devices", d.devices)
	mux.HandleFunc("GET /ui/devices/{id}", d.device)
	mux.HandleFunc("GET /ui/alerts", d.alerts)
	mux.HandleFunc("GET /ui/visits", d.visits)
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/", http.FileServerFS(staticFS)))
	return tokenLanding(mux)
}

// tokenLanding turns "?token=T" on a first visit into the session cookie and redirects to
// the same page without it, so the token does not linger in the address bar or history.
func tokenLanding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("token"); tok != "" && r.Method == http.MethodGet {
			http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			u := *r.URL
			q := u.Query()
			q.Del("token")
			u.RawQuery = q.Encode()
			http.Redirect(w, r, (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String(), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

type page struct {
	Title, Nav, Base, Now string
}

func (d *dash) page(title, nav string) page {
	return page{Title: title, Nav: nav, Now: d.now().UTC().Format("2006-01-02 15:04")}
}

func (d *dash) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	var b strings.Builder
	if err := d.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "template: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write([]byte(b.String()))
}

func fail(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	http.Error(w, "store: "+err.Error(), http.StatusInternalServerError)
}

type stateCount struct {
	Name string
	N    int
}

func (d *dash) fleet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	counts, err := d.st.CountDevices(ctx)
	if err != nil {
		fail(w, err)
		return
	}
	data := struct {
		page
		Total     int
		States    []stateCount
		Open      []store.Alert
		Attention []*store.Device
	}{page: d.page("Fleet", "fleet")}
	for _, s := range store.States {
		if counts[s] > 0 {
			data.States = append(data.States, stateCount{s, counts[s]})
		}
		data.Total += counts[s]
	}
	if data.Open, err = d.st.ListAlerts(ctx, store.Page{Limit: 100}, true); err != nil {
		fail(w, err)
		return
	}
	for _, s := range []string{store.StateTampered, store.StateSuspect, store.StateSilent, store.StateService} {
		list, err := d.st.ListDevices(ctx, store.DeviceFilter{State: s, Limit: 100})
		if err != nil {
			fail(w, err)
			return
		}
		data.Attention = append(data.Attention, list...)
	}
	d.render(w, "fleet.html", data)
}

func (d *dash) devices(w http.ResponseWriter, r *http.Request) {
	const limit = 1000
	filter := r.URL.Query().Get("state")
	list, err := d.st.ListDevices(r.Context(), store.DeviceFilter{State: filter, Limit: limit + 1})
	if err != nil {
		fail(w, err)
		return
	}
	data := struct {
		page
		Filter  string
		Devices []*store.Device
		More    bool
	}{page: d.page("Devices", "devices"), Filter: filter, Devices: list}
	if len(list) > limit {
		data.Devices, data.More = list[:limit], true
	}
	d.render(w, "devices.html", data)
}

// maxEvents bounds what a device page reads of the log; routine entries beyond
// shownRoutine are summarised, tamper-class ones always shown.
const (
	maxEvents    = 5000
	shownRoutine = 200
)

func (d *dash) device(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	dev, err := d.st.GetDevice(ctx, id)
	if err != nil {
		fail(w, err)
		return
	}
	evs, err := d.events(ctx, id)
	if err != nil {
		fail(w, err)
		return
	}
	data := struct {
		page
		D          *store.Device
		Chart      template.HTML
		Received   template.HTML
		History    []store.Audit
		Events     []store.Event
		EventCount int
		Tamper     int
		Elided     int
		Alerts     []store.Alert
		Visits     []store.Visit
	}{page: d.page(id, "devices"), D: dev, EventCount: len(evs)}
	data.Chart, data.Received = chart(evs), received(evs)
	// Newest first; every tamper-class entry, and the newest routine ones.
	routine := 0
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.Tamper {
			data.Tamper++
		}
		if e.Decoded == "" && !e.Tamper {
			e.Decoded = decode(e.Type, e.Payload)
		}
		if e.Tamper || routine < shownRoutine {
			if !e.Tamper {
				routine++
			}
			data.Events = append(data.Events, e)
			continue
		}
		data.Elided++
	}
	if data.History, err = d.st.ListAudit(ctx, store.Page{Dev: id, Limit: 100}); err != nil {
		fail(w, err)
		return
	}
	alerts, err := d.st.ListAlerts(ctx, store.Page{Dev: id, Limit: 100}, false)
	if err != nil {
		fail(w, err)
		return
	}
	for _, a := range alerts {
		if a.Dev == id {
			data.Alerts = append(data.Alerts, a)
		}
	}
	if data.Visits, err = d.st.ListVisits(ctx, id); err != nil {
		fail(w, err)
		return
	}
	d.render(w, "device.html", data)
}

// events reads a device's verified log, oldest first.
func (d *dash) events(ctx context.Context, id string) ([]store.Event, error) {
	var out []store.Event
	after := uint64(0)
	for len(out) < maxEvents {
		page, err := d.st.ListEvents(ctx, store.Page{Dev: id, AfterN: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].N
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, nil
}

// decode renders a routine entry's payload for the table (the store decodes tamper-class
// and service entries itself).
func decode(typ uint16, payload []byte) string {
	v, err := wire.DecodePayload(typ, payload)
	if err != nil {
		return ""
	}
	switch p := v.(type) {
	case *wire.RegisterPayload:
		return "register " + itoa(p.Litres) + " L"
	case *wire.BootPayload:
		return "boot " + itoa(uint64(p.BootCount)) + " (" + p.ResetCause + "), manifest v" + itoa(p.ManifestVersion)
	case *wire.CheckOKPayload:
		return itoa(uint64(p.Files)) + " files verified"
	case *wire.RecoveredPayload:
		return p.What
	}
	return ""
}

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

func (d *dash) alerts(w http.ResponseWriter, r *http.Request) {
	list, err := d.st.ListAlerts(r.Context(), store.Page{Limit: 500}, false)
	if err != nil {
		fail(w, err)
		return
	}
	d.render(w, "alerts.html", struct {
		page
		Alerts []store.Alert
	}{d.page("Alerts", "alerts"), list})
}

func (d *dash) visits(w http.ResponseWriter, r *http.Request) {
	list, err := d.st.ListVisits(r.Context(), "")
	if err != nil {
		fail(w, err)
		return
	}
	d.render(w, "visits.html", struct {
		page
		Visits []store.Visit
	}{d.page("Service visits", "visits"), list})
}
