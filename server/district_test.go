package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/wire"
)

// town is a small district run through the real pipeline: an inlet and customers that log
// their registers every hour and report them sealed; one customer is bypassed (registers
// half its use) from bypassFrom on, and the network loses lossPct of the input.
type town struct {
	e         *env
	inlet     *device
	customers []*device
	litres    map[string]float64
}

const townCustomers = 8

func newTown(e *env) *town {
	tw := &town{e: e, litres: map[string]float64{}}
	tw.inlet = e.provision("inlet-1", "watermeter")
	for i := range townCustomers {
		tw.customers = append(tw.customers, e.provision(fmt.Sprintf("cust-%d", i), "watermeter"))
	}
	if e.man != nil {
		for _, d := range append(tw.customers, tw.inlet) {
			d.man = wire.ManifestRef{Product: "watermeter", Version: e.man.Version, Root: e.man.Root}
		}
	}
	return tw
}

// run advances the clock hour by hour; bypassed(h) says whether cust-0 is bypassed then.
func (tw *town) run(hours int, bypassed func(h int) bool, lossPct float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	for h := range hours {
		tw.e.clock.Add(time.Hour)
		var used float64
		for i, d := range tw.customers {
			hour := tw.e.clock.Now().Hour()
			u := (20 + 10*float64(i%3)) * (0.4 + math.Max(0, math.Sin(float64(hour)/24*2*math.Pi))) * (0.8 + 0.4*rng.Float64())
			used += u
			reg := u
			if i == 0 && bypassed(h) {
				reg = u / 2
			}
			tw.litres[d.b.Device] += reg
			d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(tw.litres[d.b.Device])})
			tw.e.mustSend(d)
		}
		tw.litres["inlet-1"] += used / (1 - lossPct/100)
		tw.inlet.log(wire.EntryRegister, &wire.RegisterPayload{Litres: uint64(tw.litres["inlet-1"])})
		tw.e.mustSend(tw.inlet)
	}
}

func membersCSV() []byte {
	var b strings.Builder
	b.WriteString("device,district,role\ninlet-1,north,inlet\n")
	for i := range townCustomers {
		fmt.Fprintf(&b, "cust-%d,north,customer\n", i)
	}
	return []byte(b.String())
}

func balanceEnv(t *testing.T) *env {
	return newEnv(t, func(c *server.Config) {
		c.Balance = server.BalanceConfig{Every: -1, Inspect: analytics.InspectConfig{Baseline: 24 * time.Hour}}
	})
}

// Districts are configured through the API (admin only), members imported by CSV with
// every row checked before any is applied, and the balance and inspection list computed
// from the registers of sealed reports find the bypassed meter, not the honest ones.
func TestDistrictBalanceFromSealedRegisters(t *testing.T) {
	e := balanceEnv(t)
	admin := e.s.AdminToken()
	viewer := e.token("viewer-1", server.RoleViewer)
	cfg := map[string]any{"name": "North DMA", "config": map[string]any{"nrw_target_pct": 20, "connections": 8}}
	if code := e.api("PUT", "/api/v1/districts/north", viewer, cfg, nil); code != http.StatusForbidden {
		t.Fatalf("viewer configured a district: %d", code)
	}
	for _, bad := range []map[string]any{
		{"config": map[string]any{"inlets": []string{"x"}}},
		{"config": map[string]any{"tanks": []map[string]any{{"level": "t", "area_m2": 3}}}},
		{"config": map[string]any{"time_zone": "Mars/Olympus"}},
		{"config": map[string]any{"nrw_targt_pct": 3}},
	} {
		if code := e.api("PUT", "/api/v1/districts/north", admin, bad, nil); code != http.StatusBadRequest {
			t.Fatalf("PUT %v: %d, want 400", bad, code)
		}
	}
	// Members of a district that does not exist yet: refused, nothing stored.
	if code := e.api("POST", "/api/v1/district-members", admin, membersCSV(), nil); code != http.StatusNotFound {
		t.Fatalf("members before the district: %d, want 404", code)
	}
	if code := e.api("PUT", "/api/v1/districts/north", admin, cfg, nil); code != http.StatusOK {
		t.Fatalf("PUT district: %d", code)
	}
	for _, bad := range []string{"dev,district,role\n", "device,district,role\ncust-0,north,owner\n", "device,district,role\nbad id!,north,customer\n"} {
		if code := e.api("POST", "/api/v1/district-members", admin, []byte(bad), nil); code != http.StatusBadRequest {
			t.Fatalf("import %q: %d, want 400", bad, code)
		}
	}
	if code := e.api("POST", "/api/v1/district-members", viewer, membersCSV(), nil); code != http.StatusForbidden {
		t.Fatalf("viewer imported members: %d", code)
	}
	var imported map[string]int
	if code := e.api("POST", "/api/v1/district-members", admin, membersCSV(), &imported); code != http.StatusOK || imported["set"] != townCustomers+1 {
		t.Fatalf("import: %d %v", code, imported)
	}
	var dv httpapi.DistrictView
	if code := e.api("GET", "/api/v1/districts/north", viewer, nil, &dv); code != http.StatusOK || len(dv.Members) != townCustomers+1 || dv.Name != "North DMA" {
		t.Fatalf("GET district: %d %+v", code, dv)
	}

	tw := newTown(e)
	tw.run(72, func(h int) bool { return h >= 40 }, 10)
	if err := e.s.RefreshBalances(context.Background()); err != nil {
		t.Fatal(err)
	}
	var res server.DistrictResult
	if code := e.api("GET", "/api/v1/districts/north/inspection", viewer, nil, &res); code != http.StatusOK {
		t.Fatalf("inspection: %d", code)
	}
	if res.Error != "" || res.Inspection == nil {
		t.Fatalf("refresh error: %q", res.Error)
	}
	in := res.Inspection
	if len(in.List) == 0 || in.List[0].Device != "cust-0" || !in.List[0].Flagged {
		t.Fatalf("inspection list does not put the bypassed meter first and flagged: %+v", in.List)
	}
	for _, c := range in.List[1:] {
		if c.Flagged {
			t.Errorf("honest meter %s flagged: %s", c.Device, c.Reason)
		}
	}
	if c, ok := e.s.OnInspectionList("cust-0"); !ok || c.Reason == "" {
		t.Fatalf("cust-0 not on the list for its device page: %+v %v", c, ok)
	}
	if _, ok := e.s.OnInspectionList("cust-1"); ok {
		t.Fatal("honest cust-1 is on the list")
	}
	if len(res.Series) < 3 {
		t.Fatalf("plot series has %d points", len(res.Series))
	}

	// The balance over the whole period: system input is the inlet's registers, billed
	// metered the customers', and non-revenue water the difference.
	var b analytics.WaterBalance
	if code := e.api("GET", "/api/v1/districts/north/balance", viewer, nil, &b); code != http.StatusOK {
		t.Fatalf("balance: %d", code)
	}
	if b.SystemInputM3 <= 0 || b.BilledMeteredM3 <= 0 || math.Abs(b.SystemInputM3-b.BilledMeteredM3-b.NonRevenueM3) > 1e-6 {
		t.Fatalf("balance does not add up: %+v", b)
	}
	// 10 % network loss plus half of cust-0's use after hour 40: NRW between 10 and 20 %.
	if b.NonRevenuePct < 10 || b.NonRevenuePct > 20 {
		t.Fatalf("non-revenue water %.1f %%, want 10–20 %%", b.NonRevenuePct)
	}
	from := in.From.Format(time.RFC3339)
	to := in.From.Add(24 * time.Hour).Format(time.RFC3339)
	var day analytics.WaterBalance
	if code := e.api("GET", "/api/v1/districts/north/balance?from="+from+"&to="+to, viewer, nil, &day); code != http.StatusOK || math.Abs(day.Days-1) > 1e-9 {
		t.Fatalf("one day's balance: %d %+v", code, day)
	}
	// Before the bypass the loss is the network's 10 %.
	if math.Abs(day.NonRevenuePct-10) > 1 {
		t.Fatalf("first day's NRW %.2f %%, want 10 %%", day.NonRevenuePct)
	}
	req, _ := http.NewRequest("GET", e.base+"/api/v1/districts/north/balance?format=csv&from="+from+"&to="+to, nil)
	req.Header.Set("Authorization", "Bearer "+viewer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var want bytes.Buffer
	analytics.WriteCSV(&want, &day)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || !bytes.Equal(body, want.Bytes()) {
		t.Fatalf("CSV balance: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll(); err != nil || len(rows) < 10 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	for _, q := range []string{"?from=" + from, "?from=yesterday&to=" + to, "?from=" + to + "&to=" + from, "?format=xml"} {
		if code := e.api("GET", "/api/v1/districts/north/balance"+q, viewer, nil, nil); code != http.StatusBadRequest {
			t.Errorf("balance%s: %d, want 400", q, code)
		}
	}
	if code := e.api("GET", "/api/v1/districts/south/inspection", viewer, nil, nil); code != http.StatusNotFound {
		t.Fatalf("unknown district: %d", code)
	}

	// Taking the bypassed meter out of the district takes it off the list at the next refresh.
	if code := e.api("POST", "/api/v1/district-members", admin, []byte("device,district,role\ncust-0,north,remove\n"), &imported); code != 200 || imported["removed"] != 1 {
		t.Fatalf("remove: %d %v", code, imported)
	}
	if err := e.s.RefreshBalances(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.s.OnInspectionList("cust-0"); ok {
		t.Fatal("a removed meter is still on the list")
	}
}

// A district without an inlet is no balance: the refresh says what to import.
func TestDistrictBalanceNeedsInlet(t *testing.T) {
	e := balanceEnv(t)
	admin := e.s.AdminToken()
	e.api("PUT", "/api/v1/districts/west", admin, map[string]any{"config": map[string]any{}}, nil)
	e.api("POST", "/api/v1/district-members", admin, []byte("device,district,role\nc1,west,customer\n"), nil)
	var res server.DistrictResult
	if code := e.api("GET", "/api/v1/districts/west/inspection", admin, nil, &res); code != 200 || !strings.Contains(res.Error, "no inlet meter") {
		t.Fatalf("%d %q", code, res.Error)
	}
	if code := e.api("GET", "/api/v1/districts/west/balance", admin, nil, nil); code != http.StatusBadRequest {
		t.Fatalf("balance of a district without inlet: %d", code)
	}
}

// The server refreshes every district on its schedule, without being asked: the bypassed
// meter reaches the list the device page and fleet view read.
func TestDistrictBalanceRefreshedOnSchedule(t *testing.T) {
	e := newEnv(t, func(c *server.Config) {
		c.Balance = server.BalanceConfig{Every: 20 * time.Millisecond, Inspect: analytics.InspectConfig{Baseline: 24 * time.Hour}}
	})
	admin := e.s.AdminToken()
	e.api("PUT", "/api/v1/districts/north", admin, map[string]any{"config": map[string]any{}}, nil)
	e.api("POST", "/api/v1/district-members", admin, membersCSV(), nil)
	newTown(e).run(72, func(h int) bool { return h >= 40 }, 10)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, ok := e.s.OnInspectionList("cust-0"); ok {
			if c.Rank != 1 {
				t.Fatalf("cust-0 at rank %d", c.Rank)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled refresh put the bypassed meter on the list within 20 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The console's water-balance pages: the district list, the plot and the ranked list; the
// bypassed meter carries an "inspect" badge in the fleet list and on its device page, an
// honest one does not.
func TestConsoleBalancePages(t *testing.T) {
	e := balanceEnv(t)
	admin := e.s.AdminToken()
	e.api("PUT", "/api/v1/districts/north", admin, map[string]any{"name": "North DMA", "config": map[string]any{}}, nil)
	e.api("POST", "/api/v1/district-members", admin, membersCSV(), nil)
	newTown(e).run(72, func(h int) bool { return h >= 40 }, 10)
	if err := e.s.RefreshBalances(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, e.base)
	b.signIn(e.token("viewer-1", server.RoleViewer))
	code, body, _ := b.get("/ui/balance")
	if code != 200 || !strings.Contains(body, `href="/ui/balance/north"`) || !strings.Contains(body, "North DMA") {
		t.Fatalf("district list: %d\n%s", code, body)
	}
	code, body, _ = b.get("/ui/balance/north")
	if code != 200 {
		t.Fatalf("balance page: %d", code)
	}
	for _, want := range []string{"<svg", "<polyline", "<rect", "non-revenue water", "m³/day", `<a href="/ui/devices/cust-0">cust-0</a>`, "meters, per hour</h2>"} {
		if !strings.Contains(body, want) {
			t.Errorf("balance page lacks %q", want)
		}
	}
	// cust-0 is the first row of the list, flagged.
	rows := strings.Split(body, "<tr")
	var first string
	for _, r := range rows {
		if strings.Contains(r, `data-label="rank"`) {
			first = r
			break
		}
	}
	if !strings.Contains(first, "cust-0") || !strings.Contains(first, "inspect") {
		t.Fatalf("first list row is not cust-0 flagged: %s", first)
	}
	_, fleet, _ := b.get("/ui/devices?q=cust")
	if !regexp.MustCompile(`cust-0</a> <a class="badge" href="/ui/balance/north"[^>]*>inspect #1</a>`).MatchString(fleet) {
		t.Fatalf("fleet list: no inspect badge on cust-0\n%s", fleet)
	}
	if strings.Contains(fleet, `cust-1</a> <a class="badge"`) {
		t.Fatal("fleet list: honest cust-1 has an inspect badge")
	}
	_, dev, _ := b.get("/ui/devices/cust-0")
	if !strings.Contains(dev, "Rank 1 on the inspection list of district") {
		t.Fatal("device page of cust-0 does not say it is on the inspection list")
	}
	if _, dev, _ := b.get("/ui/devices/cust-1"); strings.Contains(dev, "on the inspection list") {
		t.Fatal("device page of honest cust-1 says it is on the list")
	}
	if code, _, _ := b.get("/ui/balance/nope"); code != 404 {
		t.Fatalf("unknown district page: %d", code)
	}
}
