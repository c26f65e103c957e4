package analytics_test

import (
	"fmt"
	"os"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
)

// A day's balance of a small district: one inlet read at 06:00 each day (prorated to
// midnight), two customers, an unmetered allowance; then the IWA table as CSV.
func ExampleBalance() {
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	h := func(x float64) time.Time { return day.Add(time.Duration(x * float64(time.Hour))) }
	cfg := analytics.DistrictConfig{Name: "north", Inlets: []string{"inlet"}, Customers: []string{"a", "b"},
		UnbilledUnmeteredM3PerDay: 0.2, Connections: 2}
	data := analytics.Data{Registers: map[string]analytics.Series{
		"inlet": {{T: h(-18), Litres: 0}, {T: h(6), Litres: 2400}, {T: h(30), Litres: 4800}}, // 100 L/h
		"a":     {{T: h(0), Litres: 0}, {T: h(24), Litres: 1200}},
		"b":     {{T: h(0), Litres: 0}, {T: h(24), Litres: 800}},
	}}
	b, err := analytics.Balance(cfg, data, h(0), h(24))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("input %.1f m³, billed %.1f m³, NRW %.1f m³/day (%.1f %%), real losses %.0f L/connection/day\n",
		b.SystemInputM3, b.BilledMeteredM3, b.NonRevenueM3Day, b.NonRevenuePct, b.RealLossesLConDay)
	_ = analytics.WriteCSV(os.Stdout, b)
	// Output:
	// input 2.4 m³, billed 2.0 m³, NRW 0.4 m³/day (16.7 %), real losses 100 L/connection/day
	// district,from,to,level,component,m3,m3_per_day,pct_of_system_input
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,1,System input volume,2.400,2.400,100.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,2,Authorised consumption,2.200,2.200,91.67
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,3,Billed authorised consumption,2.000,2.000,83.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Billed metered consumption,2.000,2.000,83.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Billed unmetered consumption,0.000,0.000,0.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,3,Unbilled authorised consumption,0.200,0.200,8.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Unbilled metered consumption,0.000,0.000,0.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Unbilled unmetered consumption,0.200,0.200,8.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,2,Water losses,0.200,0.200,8.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,3,Apparent losses,0.000,0.000,0.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Unauthorised consumption,0.000,0.000,0.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,4,Customer metering inaccuracies,0.000,0.000,0.00
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,3,Real losses,0.200,0.200,8.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,2,Revenue water,2.000,2.000,83.33
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,2,Non-revenue water,0.400,0.400,16.67
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,0,Water losses 95% limit (m3),0.052,,
	// north,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,0,Real losses per connection (L/connection/day),100.000,,
}
