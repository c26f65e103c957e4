package dashboard

import (
	"context"
	"encoding/hex"
	"html/template"
	"net/http"
	"sort"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// maxEvents bounds what a device page reads of the log; routine entries beyond
// shownRoutine are left out of the table, evidence lines never are.
const (
	maxEvents    = 5000
	shownRoutine = 100
)

type deviceData struct {
	page
	D          *store.Device
	Reason     Reason
	Root       string // running manifest's root, hex prefix
	Chart      template.HTML
	Received   template.HTML
	Evidence   []line
	History    []line
	Routine    []store.Event
	EventCount int
	Elided     int
	Alerts     []store.Alert
	OpenAlerts int
	Visits     []store.Visit
	OpenVisits []store.Visit
	Clearable  bool
	Flash      string
}

func (d *dash) loadDevice(ctx context.Context, r *http.Request, id string) (*deviceData, error) {
	dev, err := d.st.GetDevice(ctx, id)
	if err != nil {
		return nil, err
	}
	evs, err := d.events(ctx, dev)
	if err != nil {
		return nil, err
	}
	data := &deviceData{page: d.page(r, id, "fleet"), D: dev, EventCount: len(evs), Reason: lookupReason(dev.StateReason)}
	data.Clearable = dev.State == store.StateTampered || dev.State == store.StateSuspect
	data.Flash = d.flash(r)
	if m, err := d.st.GetManifest(ctx, dev.Product, dev.RunningVersion); err == nil {
		data.Root = hex.EncodeToString(m.Root[:min(len(m.Root), 8)])
	}
	data.Chart, data.Received = chart(evs), received(evs)
	data.Evidence = evidenceLines(evs)
	for i := len(evs) - 1; i >= 0; i-- {
		if len(data.Routine) == shownRoutine {
			data.Elided = i + 1
			break
		}
		e := evs[i]
		if !e.Tamper {
			e.Decoded = entrySentence(e)
			data.Routine = append(data.Routine, e)
		}
	}
	audit, err := d.st.ListAudit(ctx, store.Page{Dev: id, Limit: 500})
	if err != nil {
		return nil, err
	}
	data.History = historyLines(audit)
	alerts, err := d.st.ListAlerts(ctx, store.Page{Dev: id, Limit: 100}, false)
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		if a.Dev == id {
			data.Alerts = append(data.Alerts, a)
			if a.AckedBy == "" {
				data.OpenAlerts++
			}
		}
	}
	if data.Visits, err = d.st.ListVisits(ctx, id); err != nil {
		return nil, err
	}
	for _, v := range data.Visits {
		if v.Closed.IsZero() {
			data.OpenVisits = append(data.OpenVisits, v)
		}
	}
	return data, nil
}

func (d *dash) device(w http.ResponseWriter, r *http.Request) {
	data, err := d.loadDevice(r.Context(), r, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "device.html", data)
}

// events reads the verified log of the device's current epoch, oldest first.
func (d *dash) events(ctx context.Context, dev *store.Device) ([]store.Event, error) {
	var out []store.Event
	after := uint64(0)
	for len(out) < maxEvents {
		page, err := d.st.ListEvents(ctx, store.Page{Dev: dev.ID, AfterN: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if e.Epoch == dev.Epoch {
				out = append(out, e)
			}
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].N
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	for i := range out {
		if out[i].TypeName == "" {
			out[i].TypeName = wire.EntryName(out[i].Type)
		}
	}
	return out, nil
}

func (d *dash) alerts(w http.ResponseWriter, r *http.Request) {
	open := r.URL.Query().Get("open") == "1"
	list, err := d.st.ListAlerts(r.Context(), store.Page{Limit: 500}, open)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "alerts.html", struct {
		page
		Alerts []store.Alert
		Open   bool
	}{d.page(r, "Alerts", "alerts"), list, open})
}

func (d *dash) visits(w http.ResponseWriter, r *http.Request) {
	list, err := d.st.ListVisits(r.Context(), "")
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if len(list) > 1000 {
		list = list[:1000]
	}
	d.render(w, r, "visits.html", struct {
		page
		Visits []store.Visit
	}{d.page(r, "Service visits", "visits"), list})
}

func (d *dash) reasons(w http.ResponseWriter, r *http.Request) {
	var list []Reason
	for _, n := range ReasonNames() {
		list = append(list, Reasons[n])
	}
	d.render(w, r, "reasons.html", struct {
		page
		Reasons []Reason
	}{d.page(r, "Reason names", "reasons"), list})
}
