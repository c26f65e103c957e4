package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
)

func init() {
	register(verb{name: "balance", summary: "a district's IWA water balance (CSV), or with --json its alarms and inspection list", run: runBalance})
}

func runBalance(ctx context.Context, env *Env, args []string) int {
	flags := newFlags(env, "balance", "--district FILE --reads FILE [--from TIME] [--to TIME] [--json]")
	district := flags.String("district", "", "the district's configuration, JSON (docs/WATER_BALANCE.md)")
	reads := flags.String("reads", "", "reads, CSV with header meter,time,value (litres; metres for tank levels)")
	fromS := flags.String("from", "", "start of the period, RFC 3339 (default: the first hour the bulk meters cover)")
	toS := flags.String("to", "", "end of the period, RFC 3339 (default: the last hour the data covers)")
	asJSON := flags.Bool("json", false, "print the inspection as JSON: balances, night flows, alarms, verdict, ranked meters")
	pos, code, ok := parseFlags(flags, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(env, flags, "unexpected argument %q: the files go with --district and --reads", pos[0])
	}
	if code, ok := requireFlags(env, flags, "district", "reads"); !ok {
		return code
	}
	raw, err := os.ReadFile(*district)
	if err != nil {
		return fail(env, "balance", fmt.Errorf("--district %s: %v", *district, plainFileErr(err)))
	}
	var cfg analytics.DistrictConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return fail(env, "balance", fmt.Errorf("--district %s: %s", *district, jsonProblem(err)))
	}
	if cfg.Name == "" || len(cfg.Inlets) == 0 {
		return fail(env, "balance", fmt.Errorf("--district %s: needs \"name\" and at least one meter in \"inlets\"", *district))
	}
	f, err := os.Open(*reads)
	if err != nil {
		return fail(env, "balance", fmt.Errorf("--reads %s: %v", *reads, plainFileErr(err)))
	}
	defer f.Close()
	levels := map[string]bool{}
	for _, t := range cfg.Tanks {
		levels[t.Level] = true
	}
	data, err := analytics.ReadCSV(f, levels)
	if err != nil {
		return fail(env, "balance", fmt.Errorf("--reads %s: %v", *reads, err))
	}
	for _, id := range append(append(append([]string(nil), cfg.Inlets...), cfg.Outlets...), cfg.Customers...) {
		if len(data.Registers[id]) == 0 {
			return fail(env, "balance", fmt.Errorf("--reads %s has no reads of meter %q named in --district %s", *reads, id, *district))
		}
	}
	from, to, err := balancePeriod(cfg, data, *fromS, *toS)
	if err != nil {
		return fail(env, "balance", err)
	}
	if !*asJSON {
		b, err := analytics.Balance(cfg, data, from, to)
		if err != nil {
			return fail(env, "balance", err)
		}
		if err := analytics.WriteCSV(env.Stdout, b); err != nil {
			return fail(env, "balance", err)
		}
		return ExitOK
	}
	in, err := analytics.Inspect(cfg, data, from, to, analytics.InspectConfig{}, nil)
	if err != nil {
		return fail(env, "balance", err)
	}
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(in); err != nil {
		return fail(env, "balance", err)
	}
	return ExitOK
}

// balancePeriod parses --from/--to, defaulting to the whole hours the bulk meters cover.
func balancePeriod(cfg analytics.DistrictConfig, data analytics.Data, fromS, toS string) (from, to time.Time, err error) {
	for _, id := range append(append([]string(nil), cfg.Inlets...), cfg.Outlets...) {
		if s := data.Registers[id]; len(s) > 0 && s[0].T.After(from) {
			from = s[0].T
		}
	}
	from = from.Truncate(time.Hour)
	if from.Before(data.Registers[cfg.Inlets[0]][0].T) {
		from = from.Add(time.Hour)
	}
	to = analytics.ReadyUntil(cfg, data).Truncate(time.Hour)
	if fromS != "" {
		if from, err = time.Parse(time.RFC3339, fromS); err != nil {
			return from, to, fmt.Errorf("--from %q is not RFC 3339 (e.g. 2026-03-02T00:00:00Z)", fromS)
		}
	}
	if toS != "" {
		if to, err = time.Parse(time.RFC3339, toS); err != nil {
			return from, to, fmt.Errorf("--to %q is not RFC 3339 (e.g. 2026-03-09T00:00:00Z)", toS)
		}
	}
	if !to.After(from) {
		return from, to, fmt.Errorf("the period %s → %s is empty: --to must come after --from (and the reads must cover it)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// jsonProblem says what is wrong with a JSON file without Go's type names.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q has the wrong kind of value (%s)", te.Field, te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ") + " (the fields are listed in docs/WATER_BALANCE.md)"
	case err.Error() == "EOF" || err.Error() == "unexpected EOF":
		return "empty or cut short: want a JSON object"
	}
	return "not a district configuration: " + err.Error()
}

// plainFileErr is a file error without the path (the caller names the flag and file).
func plainFileErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("no such file")
		}
		return pe.Err
	}
	return err
}
