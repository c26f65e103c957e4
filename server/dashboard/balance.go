package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"strings"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

type districtRow struct {
	D       store.District
	Members int
	R       *server.DistrictResult
	Flagged int
}

// districts lists the configured districts with their latest non-revenue water and how
// many meters their inspection lists flag.
func (d *dash) districts(w http.ResponseWriter, r *http.Request) {
	ds, err := d.st.ListDistricts(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	var rows []districtRow
	for _, x := range ds {
		ms, err := d.st.ListDistrictMembers(r.Context(), x.ID)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		row := districtRow{D: x, Members: len(ms)}
		if row.R, err = d.be.DistrictResult(r.Context(), x.ID); err != nil {
			d.fail(w, r, err)
			return
		}
		if row.R.Inspection != nil {
			for _, c := range row.R.Inspection.List {
				if c.Flagged {
					row.Flagged++
				}
			}
		}
		rows = append(rows, row)
	}
	d.render(w, r, "districts.html", struct {
		page
		Rows []districtRow
	}{d.page(r, "Water balance", "balance"), rows})
}

// balance is one district's page: the balance plot, the latest figures, alarms and the
// ranked inspection list.
func (d *dash) balance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	dist, err := d.st.GetDistrict(r.Context(), id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	res, err := d.be.DistrictResult(r.Context(), id)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	data := struct {
		page
		D    *store.District
		R    *server.DistrictResult
		In   *analytics.Inspection
		Plot template.HTML
		Step string
	}{page: d.page(r, "Water balance "+dist.Name, "balance"), D: dist, R: res, In: res.Inspection, Plot: balancePlot(res.Series), Step: "day"}
	if n := len(res.Series); n > 1 && res.Series[1].From.Sub(res.Series[0].From).Hours() < 24 {
		data.Step = "hour"
	}
	d.render(w, r, "balance.html", data)
}

// balancePlot draws system input against the customers' meters (m³/day, lines) and the
// loss between them (non-revenue water, bars with its % on hover), one point per step.
// The drawing is 1000 units wide; on a phone the style sheet enlarges its labels.
func balancePlot(pts []server.BalancePoint) template.HTML {
	const W, H, padL, padR, padT, split, padB = 1000, 420, 170, 16, 14, 250, 56
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="water balance: system input, customers' meters and loss per step">`, W, H)
	if len(pts) == 0 {
		b.WriteString(`<text x="20" y="40" fill="#667085">No complete step of data yet.</text></svg>`)
		return template.HTML(b.String())
	}
	vmax, lmax := 1.0, 1.0
	for _, p := range pts {
		vmax = math.Max(vmax, math.Max(p.InputM3Day, p.MeteredM3Day))
		lmax = math.Max(lmax, math.Abs(p.NonRevenueM3PD))
	}
	n := float64(len(pts))
	step := float64(W-padL-padR) / n
	x := func(i int) float64 { return padL + (float64(i)+0.5)*step }
	y := func(v float64) float64 { return split - 20 - v/vmax*(split-20-padT) }
	zero := float64(H - padB - 40)
	yl := func(v float64) float64 { return zero - v/lmax*(zero-split-10) }
	axis := func(y1, y2 float64) {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#d0d5dd"/>`, padL, y1, padL, y2)
	}
	axis(padT, split-20)
	axis(split+10, zero)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="#d0d5dd"/>`, padL, zero, W-padR, zero)
	for i, v := range []float64{0, vmax / 2, vmax} {
		class := ""
		if i < 2 {
			class = ` class="mid"` // hidden on a phone: the larger labels would collide with the loss panel's
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="13" text-anchor="end" fill="#475467"%s>%.0f m³/d</text>`, padL-8, y(v)+5, class, v)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="13" text-anchor="end" fill="#475467">%.0f m³/d</text>`, padL-8, yl(lmax)+5, lmax)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="13" text-anchor="end" fill="#475467">loss</text>`, padL-8, zero)
	for i, p := range pts {
		h := math.Abs(yl(p.NonRevenueM3PD) - zero)
		top := math.Min(yl(p.NonRevenueM3PD), zero)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f97066"><title>%s: loss %.1f m³/day, %.1f %% of input</title></rect>`,
			x(i)-step*0.4, top, math.Max(step*0.8, 0.5), h, html.EscapeString(p.From.UTC().Format("2006-01-02 15:04")), p.NonRevenueM3PD, p.NonRevenuePct)
	}
	line := func(color string, dash string, v func(server.BalancePoint) float64) {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="3"%s points="`, color, dash)
		for i, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(v(p)))
		}
		b.WriteString(`"/>`)
	}
	line("#1d4ed8", "", func(p server.BalancePoint) float64 { return p.InputM3Day })
	line("#039855", ` stroke-dasharray="10 6"`, func(p server.BalancePoint) float64 { return p.MeteredM3Day })
	first, last := pts[0], pts[len(pts)-1]
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" fill="#475467">%s</text>`, padL, H-8, first.From.UTC().Format("01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" text-anchor="end" fill="#475467">%s</text>`, W-padR, H-8, last.From.UTC().Format("01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" text-anchor="end" fill="#b42318">last: %.1f m³/d, %.1f %%</text>`, W-padR, H-padB-6, last.NonRevenueM3PD, last.NonRevenuePct)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
