package analytics

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// DistrictConfig is what the utility knows of one district metered area (DMA). Meter and
// sensor names are keys of Data. Allowances are the utility's own estimates: the balance
// reports them as configured, it cannot measure them.
type DistrictConfig struct {
	Name      string   `json:"name"`
	Inlets    []string `json:"inlets"`            // bulk meters feeding the district
	Outlets   []string `json:"outlets,omitempty"` // bulk meters carrying water on to other districts
	Tanks     []Tank   `json:"tanks,omitempty"`   // storage inside the district
	Customers []string `json:"customers"`         // billed metered customers' meters

	BilledUnmeteredM3PerDay   float64 `json:"billed_unmetered_m3_per_day,omitempty"`   // flat-rate customers
	UnbilledMeteredM3PerDay   float64 `json:"unbilled_metered_m3_per_day,omitempty"`   // metered, not billed (utility's own use)
	UnbilledUnmeteredM3PerDay float64 `json:"unbilled_unmetered_m3_per_day,omitempty"` // firefighting, flushing, unmetered public use
	// Apparent-loss allowances (AWWA M36 defaults are 0.25 % of system input for
	// unauthorised consumption and a few % for customer meters' under-registration).
	UnauthorisedPct     float64 `json:"unauthorised_pct,omitempty"`             // % of system input volume
	MeterUnderRegPct    float64 `json:"meter_under_registration_pct,omitempty"` // % of true metered consumption
	BulkAccuracyPct     float64 `json:"bulk_accuracy_pct,omitempty"`            // 95 % limit of inlet/outlet meters; default 2
	CustomerAccuracyPct float64 `json:"customer_accuracy_pct,omitempty"`        // 95 % limit of billed metered total; default 1

	// Infrastructure, for the ILI (UARL formula); all three needed.
	MainsKm        float64 `json:"mains_km,omitempty"`
	Connections    int     `json:"connections,omitempty"`
	ServiceLengthM float64 `json:"service_length_m,omitempty"` // mean service pipe from property line to meter
	AvgPressureM   float64 `json:"avg_pressure_m,omitempty"`   // average operating pressure, metres head

	// TimeZone (IANA name, e.g. "Europe/Lisbon") is the district's local time: the night
	// window is in it. Default: the location of the times handed in.
	TimeZone string `json:"time_zone,omitempty"`
	// Night-flow window [NightFrom, NightTo) in local hours; default 2–4.
	NightFrom int `json:"night_from,omitempty"`
	NightTo   int `json:"night_to,omitempty"`
	// Legitimate night use that no customer meter sees (unmetered connections at night).
	NightAllowanceM3PerH float64 `json:"night_allowance_m3_per_h,omitempty"`

	// Windows leave out hours where a bulk meter's or level sensor's reads are further
	// apart than this: interpolation would invent the hours' pattern [3].
	MaxBulkGapHours float64 `json:"max_bulk_gap_hours,omitempty"`

	// Standing-loss targets. NRW: zero means the default 15 %, negative disables the rule.
	// Night flow: zero disables the rule (its scale depends on the district).
	NRWTargetPct          float64 `json:"nrw_target_pct,omitempty"`
	NightFlowTargetM3PerH float64 `json:"night_flow_target_m3_per_h,omitempty"`
}

// Tank is storage inside a district: its level sensor's name in Data.Levels and its
// plan area. Water that raises the level entered through the inlets without being used.
type Tank struct {
	Level  string  `json:"level"`
	AreaM2 float64 `json:"area_m2"`
	// LevelStepM is the sensor's resolution, for the balance's uncertainty.
	LevelStepM float64 `json:"level_step_m,omitempty"`
}

// Data is what was read: registers in litres by meter, levels in metres by sensor (the
// Litres field of each Read holds metres).
type Data struct {
	Registers map[string]Series
	Levels    map[string]Series
}

// Term is one meter's part of a balance line.
type Term struct {
	Meter     string  `json:"meter"`
	M3        float64 `json:"m3"`
	Estimated bool    `json:"estimated,omitempty"`
}

// WaterBalance is the IWA/AWWA water balance of one district over one period. Volumes in
// m³ over the period; per-day figures divide by Days.
type WaterBalance struct {
	District string    `json:"district"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Days     float64   `json:"days"`

	Inflows           []Term  `json:"inflows"`
	Outflows          []Term  `json:"outflows,omitempty"`
	StorageIncreaseM3 float64 `json:"storage_increase_m3"`
	SystemInputM3     float64 `json:"system_input_m3"` // inflows − outflows − storage increase

	BilledMeteredM3     float64 `json:"billed_metered_m3"`
	BilledUnmeteredM3   float64 `json:"billed_unmetered_m3"`
	UnbilledMeteredM3   float64 `json:"unbilled_metered_m3"`
	UnbilledUnmeteredM3 float64 `json:"unbilled_unmetered_m3"`
	AuthorisedM3        float64 `json:"authorised_m3"`

	WaterLossesM3        float64 `json:"water_losses_m3"`
	WaterLossesPM95M3    float64 `json:"water_losses_pm95_m3"` // ± 95 % limit from meter accuracy and level resolution
	UnauthorisedM3       float64 `json:"unauthorised_m3"`
	MeteringInaccuracyM3 float64 `json:"metering_inaccuracy_m3"`
	ApparentLossesM3     float64 `json:"apparent_losses_m3"`
	RealLossesM3         float64 `json:"real_losses_m3"`

	RevenueWaterM3    float64 `json:"revenue_water_m3"`
	NonRevenueM3      float64 `json:"non_revenue_m3"`
	NonRevenueM3Day   float64 `json:"non_revenue_m3_per_day"`
	NonRevenuePct     float64 `json:"non_revenue_pct"` // of system input volume
	RealLossesM3Day   float64 `json:"real_losses_m3_per_day"`
	RealLossesLConDay float64 `json:"real_losses_l_per_connection_per_day,omitempty"`
	UARLM3Day         float64 `json:"uarl_m3_per_day,omitempty"`
	ILI               float64 `json:"ili,omitempty"`

	CustomersRead      int      `json:"customers_read"`
	CustomersEstimated []string `json:"customers_estimated,omitempty"` // prorated at their mean rate where reads do not cover the period
	Notes              []string `json:"notes,omitempty"`
}

// UARL is the unavoidable annual real losses in litres a day (Lambert et al., IWA 1999):
// (18 × mains km + 0.8 × connections + 25 × km of service pipe from property line to
// meter) × average pressure in metres.
func UARL(mainsKm float64, connections int, serviceKm, pressureM float64) float64 {
	return (18*mainsKm + 0.8*float64(connections) + 25*serviceKm) * pressureM
}

// Balance computes the district's water balance over [from, to). Bulk meters (inlets,
// outlets) and tank levels must cover the period: a balance with a guessed inflow is no
// balance, and the error names the meter. Customer meters that do not cover it are
// prorated at their mean rate and listed in CustomersEstimated.
func Balance(cfg DistrictConfig, data Data, from, to time.Time) (*WaterBalance, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("balance %s: period %s → %s is empty", cfg.Name, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if len(cfg.Inlets) == 0 {
		return nil, fmt.Errorf("balance %s: no inlet meter configured", cfg.Name)
	}
	if _, err := cfg.Location(); err != nil {
		return nil, err
	}
	b := &WaterBalance{District: cfg.Name, From: from, To: to, Days: to.Sub(from).Hours() / 24}
	bulkAcc := pctOr(cfg.BulkAccuracyPct, 2)
	var u2 float64 // squared 95 % limits
	for _, sign := range []int{1, -1} {
		names := cfg.Inlets
		if sign < 0 {
			names = cfg.Outlets
		}
		for _, id := range names {
			l, ok := data.Registers[id].Usage(from, to)
			if !ok {
				return nil, coverErr(cfg.Name, id, data.Registers[id], from, to)
			}
			t := Term{Meter: id, M3: l / 1000}
			if sign > 0 {
				b.Inflows = append(b.Inflows, t)
			} else {
				b.Outflows = append(b.Outflows, t)
			}
			b.SystemInputM3 += float64(sign) * t.M3
			u2 += sq(bulkAcc * t.M3)
		}
	}
	for _, tk := range cfg.Tanks {
		lv := data.Levels[tk.Level]
		a, ok1 := lv.Smoothed(from, time.Hour)
		z, ok2 := lv.Smoothed(to, time.Hour)
		if !ok1 || !ok2 {
			return nil, coverErr(cfg.Name, tk.Level, lv, from, to)
		}
		b.StorageIncreaseM3 += (z - a) * tk.AreaM2
		u2 += 2 * sq(tk.LevelStepM*tk.AreaM2)
	}
	b.SystemInputM3 -= b.StorageIncreaseM3
	for _, id := range cfg.Customers {
		l, est, ok := data.Registers[id].UsageEstimated(from, to)
		if l < 0 {
			b.Notes = append(b.Notes, fmt.Sprintf("customer meter %s: register went back %.0f L over the period (meter replaced or reset?): counted as 0", id, -l))
			l, est = 0, true
		}
		if est {
			b.CustomersEstimated = append(b.CustomersEstimated, id)
		} else {
			b.CustomersRead++
		}
		if !ok {
			b.Notes = append(b.Notes, fmt.Sprintf("customer meter %s has too few reads to estimate: counted as 0", id))
		}
		b.BilledMeteredM3 += l / 1000
	}
	u2 += sq(pctOr(cfg.CustomerAccuracyPct, 1) * b.BilledMeteredM3)
	b.WaterLossesPM95M3 = math.Sqrt(u2)
	b.BilledUnmeteredM3 = cfg.BilledUnmeteredM3PerDay * b.Days
	b.UnbilledMeteredM3 = cfg.UnbilledMeteredM3PerDay * b.Days
	b.UnbilledUnmeteredM3 = cfg.UnbilledUnmeteredM3PerDay * b.Days
	b.AuthorisedM3 = b.BilledMeteredM3 + b.BilledUnmeteredM3 + b.UnbilledMeteredM3 + b.UnbilledUnmeteredM3
	b.WaterLossesM3 = b.SystemInputM3 - b.AuthorisedM3
	b.UnauthorisedM3 = cfg.UnauthorisedPct / 100 * b.SystemInputM3
	if p := cfg.MeterUnderRegPct / 100; p > 0 && p < 1 {
		// Meters that register (1−p) of the true volume: the true volume less the registered.
		b.MeteringInaccuracyM3 = b.BilledMeteredM3 * p / (1 - p)
	}
	b.ApparentLossesM3 = b.UnauthorisedM3 + b.MeteringInaccuracyM3
	b.RealLossesM3 = b.WaterLossesM3 - b.ApparentLossesM3
	b.RevenueWaterM3 = b.BilledMeteredM3 + b.BilledUnmeteredM3
	b.NonRevenueM3 = b.SystemInputM3 - b.RevenueWaterM3
	b.NonRevenueM3Day = b.NonRevenueM3 / b.Days
	if b.SystemInputM3 > 0 {
		b.NonRevenuePct = 100 * b.NonRevenueM3 / b.SystemInputM3
	}
	b.RealLossesM3Day = b.RealLossesM3 / b.Days
	if cfg.Connections > 0 {
		b.RealLossesLConDay = b.RealLossesM3Day * 1000 / float64(cfg.Connections)
	}
	if cfg.MainsKm > 0 && cfg.Connections > 0 && cfg.AvgPressureM > 0 {
		b.UARLM3Day = UARL(cfg.MainsKm, cfg.Connections, float64(cfg.Connections)*cfg.ServiceLengthM/1000, cfg.AvgPressureM) / 1000
		b.ILI = b.RealLossesM3Day / b.UARLM3Day
		if cfg.Connections < 3000 || cfg.AvgPressureM < 25 {
			b.Notes = append(b.Notes, "ILI: the UARL formula is calibrated for systems of 3000 connections or more at 25 m or more; treat this ILI as indicative")
		}
	}
	return b, nil
}

// Location is the district's time zone (nil: the times' own), or an error naming the
// configured zone.
func (cfg DistrictConfig) Location() (*time.Location, error) {
	if cfg.TimeZone == "" {
		return nil, nil
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("district %s: time_zone %q is not an IANA time zone name (e.g. \"Europe/Lisbon\"): %v", cfg.Name, cfg.TimeZone, err)
	}
	return loc, nil
}

func coverErr(district, id string, s Series, from, to time.Time) error {
	if len(s) == 0 {
		return fmt.Errorf("balance %s: no reads from %q: check the meter name in the district's configuration", district, id)
	}
	return fmt.Errorf("balance %s: reads of %q run %s → %s and do not cover the period %s → %s: choose a period inside them",
		district, id, s[0].T.Format(time.RFC3339), s.Last().Format(time.RFC3339), from.Format(time.RFC3339), to.Format(time.RFC3339))
}

func pctOr(p, def float64) float64 {
	if p <= 0 {
		p = def
	}
	return p / 100
}

func sq(x float64) float64 { return x * x }

// IWARows is the balance as the IWA/AWWA table: one row per component, parents before
// their parts, with its level in the hierarchy (1 = system input volume).
func (b *WaterBalance) IWARows() []IWARow {
	r := []IWARow{
		{1, "System input volume", b.SystemInputM3},
		{2, "Authorised consumption", b.AuthorisedM3},
		{3, "Billed authorised consumption", b.BilledMeteredM3 + b.BilledUnmeteredM3},
		{4, "Billed metered consumption", b.BilledMeteredM3},
		{4, "Billed unmetered consumption", b.BilledUnmeteredM3},
		{3, "Unbilled authorised consumption", b.UnbilledMeteredM3 + b.UnbilledUnmeteredM3},
		{4, "Unbilled metered consumption", b.UnbilledMeteredM3},
		{4, "Unbilled unmetered consumption", b.UnbilledUnmeteredM3},
		{2, "Water losses", b.WaterLossesM3},
		{3, "Apparent losses", b.ApparentLossesM3},
		{4, "Unauthorised consumption", b.UnauthorisedM3},
		{4, "Customer metering inaccuracies", b.MeteringInaccuracyM3},
		{3, "Real losses", b.RealLossesM3},
		{2, "Revenue water", b.RevenueWaterM3},
		{2, "Non-revenue water", b.NonRevenueM3},
	}
	return r
}

// IWARow is one line of the IWA table.
type IWARow struct {
	Level     int
	Component string
	M3        float64
}

// WriteCSV writes balances in the IWA layout: for each district and period one row per
// component with m³, m³/day and % of system input volume, then the performance
// indicators (real losses per connection per day, ILI) and the losses' 95 % limit.
func WriteCSV(w io.Writer, bs ...*WaterBalance) error {
	cw := csv.NewWriter(w)
	f := func(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	_ = cw.Write([]string{"district", "from", "to", "level", "component", "m3", "m3_per_day", "pct_of_system_input"})
	for _, b := range bs {
		head := []string{b.District, b.From.UTC().Format(time.RFC3339), b.To.UTC().Format(time.RFC3339)}
		for _, r := range b.IWARows() {
			pct := ""
			if b.SystemInputM3 > 0 {
				pct = f(100*r.M3/b.SystemInputM3, 2)
			}
			_ = cw.Write(append(head[:3:3], strconv.Itoa(r.Level), r.Component, f(r.M3, 3), f(r.M3/b.Days, 3), pct))
		}
		ind := []struct {
			name string
			v    float64
			ok   bool
		}{
			{"Water losses 95% limit (m3)", b.WaterLossesPM95M3, true},
			{"Real losses per connection (L/connection/day)", b.RealLossesLConDay, b.RealLossesLConDay != 0},
			{"Unavoidable annual real losses (m3/day)", b.UARLM3Day, b.UARLM3Day != 0},
			{"Infrastructure leakage index", b.ILI, b.ILI != 0},
		}
		for _, x := range ind {
			if x.ok {
				_ = cw.Write(append(head[:3:3], "0", x.name, f(x.v, 3), "", ""))
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
