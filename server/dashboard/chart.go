package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// chart draws the device's signed register reads over device time as an SVG, with a red
// line at every tamper-class entry and a blue one at service begin/end. Drawn here so the
// page needs no script.
func chart(evs []store.Event) template.HTML {
	const W, H, padL, padR, padT, padB = 1000, 240, 96, 16, 14, 44
	type pt struct {
		t float64
		v float64
	}
	var pts []pt
	var marks []store.Event
	var tmin, tmax float64
	first := true
	see := func(t float64) {
		if first {
			tmin, tmax, first = t, t, false
		}
		tmin, tmax = min(tmin, t), max(tmax, t)
	}
	for _, e := range evs {
		switch {
		case e.Type == wire.EntryRegister:
			if v, err := wire.DecodePayload(e.Type, e.Payload); err == nil {
				pts = append(pts, pt{float64(e.T), float64(v.(*wire.RegisterPayload).Litres)})
				see(float64(e.T))
			}
		case e.Tamper || e.Type == wire.EntryServiceBegin || e.Type == wire.EntryServiceEnd:
			marks = append(marks, e)
			see(float64(e.T))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="register over time">`, W, H)
	if first {
		b.WriteString(`<text x="20" y="40" fill="#667085">No register reads or evidence entries yet.</text></svg>`)
		return template.HTML(b.String())
	}
	if tmax == tmin {
		tmax = tmin + 1
	}
	vmin, vmax := 0.0, 1.0
	if len(pts) > 0 {
		vmin, vmax = pts[0].v, pts[0].v
		for _, p := range pts {
			vmin, vmax = min(vmin, p.v), max(vmax, p.v)
		}
		if vmax == vmin {
			vmax = vmin + 1
		}
	}
	x := func(t float64) float64 { return padL + (t-tmin)/(tmax-tmin)*(W-padL-padR) }
	y := func(v float64) float64 { return H - padB - (v-vmin)/(vmax-vmin)*(H-padT-padB) }
	// axes and labels
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d5dd"/>`, padL, H-padB, W-padR, H-padB)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d5dd"/>`, padL, padT, padL, H-padB)
	for i := 0; i <= 4; i++ {
		v := vmin + (vmax-vmin)*float64(i)/4
		class := ""
		if i%2 == 1 {
			class = ` class="mid"` // hidden on a phone, where the labels are larger
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#475467"%s>%.0f L</text>`, padL-6, y(v)+4, class, v)
		t := tmin + (tmax-tmin)*float64(i)/4
		anchor := [...]string{"start", "middle", "middle", "middle", "end"}[i]
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" dominant-baseline="hanging" text-anchor="%s" fill="#475467"%s>%s</text>`, x(t), H-padB+6, anchor, class,
			time.Unix(int64(t), 0).UTC().Format("01-02 15:04"))
	}
	for _, e := range marks {
		color, label := "#d92d20", e.TypeName
		if !e.Tamper {
			color = "#1570ef"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"><title>%s (entry %d)</title></line>`,
			x(float64(e.T)), padT, x(float64(e.T)), H-padB, color, html.EscapeString(label), e.N)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" fill="%s">%s</text>`, x(float64(e.T))+3, padT+10, color, html.EscapeString(label))
	}
	if len(pts) > 1 {
		b.WriteString(`<polyline fill="none" stroke="#344054" stroke-width="1.5" points="`)
		for _, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.v))
		}
		b.WriteString(`"/>`)
	}
	for _, p := range pts {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.6" fill="#344054"/>`, x(p.t), y(p.v))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// received draws how many verified entries arrived per hour of server time: when the
// device reported, and when it went quiet (a silent device's bars stop; a device back from
// an offline period delivers its stored entries in one taller bar).
func received(evs []store.Event) template.HTML {
	const W, H, padL, padR, padT, padB = 1000, 110, 96, 16, 8, 28
	if len(evs) == 0 {
		return ""
	}
	first, last := evs[0].Received, evs[0].Received
	for _, e := range evs {
		if e.Received.Before(first) {
			first = e.Received
		}
		if e.Received.After(last) {
			last = e.Received
		}
	}
	start := first.Truncate(time.Hour)
	n := int(last.Sub(start)/time.Hour) + 1
	if n > 24*31 {
		start, n = last.Truncate(time.Hour).Add(-24*31*time.Hour+time.Hour), 24*31
	}
	bins := make([]int, n)
	peak := 1
	for _, e := range evs {
		i := int(e.Received.Sub(start) / time.Hour)
		if i < 0 || i >= n {
			continue
		}
		bins[i]++
		peak = max(peak, bins[i])
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="100%%" role="img" aria-label="entries received per hour">`, W, H)
	bw := float64(W-padL-padR) / float64(n)
	for i, c := range bins {
		h := float64(c) / float64(peak) * (H - padT - padB)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#84adff"><title>%s: %d</title></rect>`,
			padL+float64(i)*bw+0.5, H-padB-h, max(bw-1, 0.5), h, start.Add(time.Duration(i)*time.Hour).UTC().Format("01-02 15:00"), c)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d5dd"/>`, padL, H-padB, W-padR, H-padB)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#667085">%d/h</text>`, padL-6, padT+10, peak)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#667085">%s</text>`, padL, H-6, start.UTC().Format("01-02 15:04"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#667085">%s</text>`, W-padR, H-6, start.Add(time.Duration(n)*time.Hour).UTC().Format("01-02 15:04"))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
