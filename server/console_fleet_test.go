package server_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
)

var rowRe = regexp.MustCompile(`<td data-label="device"><a href="/ui/devices/([^"]+)">`)
var nextRe = regexp.MustCompile(`<a class="button" href="([^"]+)" rel="next">`)

// The fleet list pages through every device once, tampered ones first; search finds a
// device by id prefix and by the work order and seal number of its visit; the CSV holds
// the whole view; a bad filter is a clear 400.
func TestConsoleFleetList(t *testing.T) {
	e := newEnv(t)
	registerManifest(e)
	ctx := context.Background()
	for i := range 130 {
		if _, err := e.s.ProvisionDevice(ctx, fmt.Sprintf("m-%03d", i), "watermeter"); err != nil {
			t.Fatal(err)
		}
	}
	e.tampered("z-tampered")
	var v store.Visit
	if code := e.api("POST", "/api/v1/devices/m-077/visits", e.s.AdminToken(), map[string]any{"work_order": "WO-5150", "technician": "ann"}, &v); code != 201 {
		t.Fatalf("book visit: %d", code)
	}
	if code := e.api("POST", "/api/v1/visits/"+v.ID+"/close", e.s.AdminToken(), map[string]any{"seal_number": "SEAL-31337", "result": "ok"}, nil); code != 200 {
		t.Fatalf("close visit: %d", code)
	}
	b := newBrowser(t, e.base)
	b.signIn(e.token("vera", server.RoleViewer))

	var seen []string
	next := "/ui/devices"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		code, body, _ := b.get(next)
		if code != 200 {
			t.Fatalf("GET %s: %d", next, code)
		}
		for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
			seen = append(seen, m[1])
		}
		next = ""
		if m := nextRe.FindStringSubmatch(body); m != nil {
			next = html.UnescapeString(m[1])
		}
	}
	uniq := map[string]bool{}
	for _, id := range seen {
		uniq[id] = true
	}
	if len(seen) != 131 || len(uniq) != 131 {
		t.Fatalf("paging showed %d rows, %d distinct; want each of 131 once", len(seen), len(uniq))
	}
	if seen[0] != "z-tampered" {
		t.Errorf("first row %s, want the tampered meter first", seen[0])
	}

	for q, want := range map[string]string{"m-07": "m-070 m-071 m-072 m-073 m-074 m-075 m-076 m-077 m-078 m-079", "WO-5150": "m-077", "SEAL-31337": "m-077", "nothing": ""} {
		_, body, _ := b.get("/ui/devices?sort=id&q=" + q)
		var got []string
		for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if strings.Join(got, " ") != want {
			t.Errorf("search %q: %v, want %s", q, got, want)
		}
	}

	code, body, resp := b.get("/ui/devices.csv?state=provisioned&sort=-id")
	if code != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s", code, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	// m-077 left provisioned with its visit: 129 devices and the header.
	if err != nil || len(rows) != 130 || rows[0][0] != "device" || rows[1][0] != "m-129" || rows[129][0] != "m-000" {
		t.Fatalf("CSV: %d rows (%v), first %v", len(rows), err, rows[:min(2, len(rows))])
	}

	for _, p := range []string{"/ui/devices?state=broken", "/ui/devices?version=x", "/ui/devices?sort=bogus", "/ui/devices?sort=last_seen&after=notacursor"} {
		if code, body, _ := b.get(p); code != http.StatusBadRequest || !strings.Contains(body, `class="error"`) {
			t.Errorf("GET %s: %d, want 400 with the reason", p, code)
		}
	}
}
