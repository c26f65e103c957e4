package dashboard

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
)

// attentionOrder is the fleet list's default order: the states an operator must act on
// first. Each state is a keyset range of the devices(state, id) index, so the list pages
// through them one after another.
var attentionOrder = []string{store.StateTampered, store.StateSuspect, store.StateSilent, store.StateService, store.StateProvisioned, store.StateTrusted}

const fleetPageSize = 50

// fleetView is a parsed fleet-list URL: the filters, the sort and where the page starts.
type fleetView struct {
	Q, State, Product, Version, Sort string
	After                            string // cursor of the previous page's last row
	query                            store.DeviceQuery
	attention                        bool
	afterState                       string // attention order: the state the cursor is in
}

func parseFleetView(v url.Values) (fleetView, string) {
	f := fleetView{Q: strings.TrimSpace(v.Get("q")), State: v.Get("state"), Product: v.Get("product"), Version: v.Get("version"), Sort: v.Get("sort"), After: v.Get("after")}
	q := &f.query
	q.Search, q.State, q.Product = f.Q, f.State, f.Product
	if len(q.Search) > 64 {
		return f, "The search is longer than any device id, work order or seal number (64 characters)."
	}
	if f.State != "" && !slices.Contains(store.States, f.State) {
		return f, "Unknown state " + strconv.Quote(f.State) + ": choose one of " + strings.Join(store.States, ", ") + "."
	}
	if f.Version != "" {
		n, err := strconv.ParseUint(f.Version, 10, 64)
		if err != nil || n == 0 {
			return f, "Manifest version must be a positive whole number."
		}
		q.Version = n
	}
	switch f.Sort {
	case "", "attention":
		f.Sort, f.attention = "attention", f.State == ""
		if !f.attention {
			q.Sort = store.SortID
		}
	case "id", "-id":
		q.Sort, q.Desc = store.SortID, f.Sort == "-id"
	case "last_seen", "-last_seen":
		q.Sort, q.Desc = store.SortLastSeen, f.Sort == "-last_seen"
	default:
		return f, "Unknown sort " + strconv.Quote(f.Sort) + "."
	}
	if f.After != "" {
		c, state, ok := parseCursor(f.After, q.Sort, f.attention)
		if !ok {
			return f, "The page link is damaged: go back to the first page."
		}
		q.After, f.afterState = c, state
	}
	return f, ""
}

// Cursors in URLs: "id" (sort by id), "unixnano~id" (last seen), "state~id" (attention).
func parseCursor(s, sort string, attention bool) (*store.DeviceCursor, string, bool) {
	switch {
	case attention:
		st, id, ok := strings.Cut(s, "~")
		return &store.DeviceCursor{ID: id}, st, ok && slices.Contains(attentionOrder, st)
	case sort == store.SortLastSeen:
		ns, id, ok := strings.Cut(s, "~")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return nil, "", false
		}
		c := &store.DeviceCursor{ID: id}
		if n != 0 {
			c.LastSeen = time.Unix(0, n)
		}
		return c, "", true
	}
	return &store.DeviceCursor{ID: s}, "", true
}

func (f fleetView) cursor(d *store.Device) string {
	switch {
	case f.attention:
		return d.State + "~" + d.ID
	case f.query.Sort == store.SortLastSeen:
		n := int64(0)
		if !d.LastSeen.IsZero() {
			n = d.LastSeen.UnixNano()
		}
		return strconv.FormatInt(n, 10) + "~" + d.ID
	}
	return d.ID
}

// URL is the fleet list with these filters, changed by the key/value pairs given.
func (f fleetView) URL(path string, kv ...string) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("q", f.Q)
	set("state", f.State)
	set("product", f.Product)
	set("version", f.Version)
	if f.Sort != "attention" {
		set("sort", f.Sort)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Del(kv[i])
		set(kv[i], kv[i+1])
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// page reads up to limit devices of the view.
func (d *dash) fleetPage(r *http.Request, f fleetView, limit int) ([]*store.Device, error) {
	q := f.query
	q.Limit = limit
	if !f.attention {
		return d.st.QueryDevices(r.Context(), q)
	}
	var out []*store.Device
	start := 0
	if f.afterState != "" {
		start = slices.Index(attentionOrder, f.afterState)
	}
	for i := start; i < len(attentionOrder) && len(out) < limit; i++ {
		q.State, q.Sort, q.Limit = attentionOrder[i], store.SortID, limit-len(out)
		q.After = nil
		if i == start && f.afterState != "" {
			q.After = f.query.After
		}
		list, err := d.st.QueryDevices(r.Context(), q)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return out, nil
}

// countsTTL is how long the fleet's counts by state are reused: counting 100,000 devices
// reads the whole state index (about 8 ms on SQLite), and a control room reloads the page
// far more often than the counts change in a way anyone reads.
const countsTTL = 5 * time.Second

type countCache struct {
	mu     sync.Mutex
	at     time.Time
	counts map[string]int
}

func (c *countCache) get(ctx context.Context, st store.Store) (map[string]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts != nil && time.Since(c.at) < countsTTL {
		return c.counts, nil
	}
	counts, err := st.CountDevices(ctx)
	if err != nil {
		return nil, err
	}
	c.counts, c.at = counts, time.Now()
	return counts, nil
}

type stateCount struct {
	Name string
	N    int
}

func (d *dash) fleet(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, bad := parseFleetView(r.URL.Query())
	if bad != "" {
		d.problem(w, r, http.StatusBadRequest, bad)
		return
	}
	counts, err := d.counts.get(ctx, d.st)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := struct {
		page
		V         fleetView
		Total     int
		States    []stateCount
		OpenCount int
		Products  []string
		Devices   []*store.Device
		Next      string
		First     string
		Sorts     [][2]string
	}{page: d.page(r, "Fleet", "fleet"), V: f}
	for _, s := range attentionOrder {
		data.States = append(data.States, stateCount{s, counts[s]})
		data.Total += counts[s]
	}
	open, err := d.st.ListAlerts(ctx, store.Page{Limit: 1000}, true)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data.OpenCount = len(open)
	ms, err := d.st.ListManifests(ctx)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	for _, m := range ms {
		if !slices.Contains(data.Products, m.Product) {
			data.Products = append(data.Products, m.Product)
		}
	}
	list, err := d.fleetPage(r, f, fleetPageSize+1)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if len(list) > fleetPageSize {
		list = list[:fleetPageSize]
		data.Next = f.URL("/ui/devices", "after", f.cursor(list[len(list)-1]))
	}
	if f.After != "" {
		data.First = f.URL("/ui/devices")
	}
	data.Devices = list
	data.Sorts = [][2]string{{"attention", "needs attention first"}, {"id", "device id A–Z"}, {"-id", "device id Z–A"}, {"last_seen", "longest silent first"}, {"-last_seen", "most recently seen first"}}
	d.render(w, r, "fleet.html", data)
}

// fleetCSV streams every device of the current view (all pages) as CSV.
func (d *dash) fleetCSV(w http.ResponseWriter, r *http.Request) {
	f, bad := parseFleetView(r.URL.Query())
	if bad != "" {
		d.problem(w, r, http.StatusBadRequest, bad)
		return
	}
	f.After, f.query.After, f.afterState = "", nil, ""
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="fieldseal-devices.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"device", "product", "state", "reason", "since", "running_version", "last_seen", "verified_entries"})
	for {
		list, err := d.fleetPage(r, f, 1000)
		if err != nil {
			cw.Write([]string{"# error: " + err.Error()})
			break
		}
		for _, dv := range list {
			cw.Write([]string{csvSafe(dv.ID), csvSafe(dv.Product), dv.State, csvSafe(dv.StateReason), fmtTime(dv.StateSince),
				strconv.FormatUint(dv.RunningVersion, 10), fmtTime(dv.LastSeen), strconv.FormatUint(dv.AnchorN, 10)})
		}
		if len(list) < 1000 {
			break
		}
		last := list[len(list)-1]
		f.query.After = store.CursorOf(last)
		f.afterState = last.State
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
