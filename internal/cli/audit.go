package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fieldseal/fieldseal/audit"
)

func init() {
	register(verb{name: "audit", summary: "check a MicroPython board definition for ways around the guard (D17–D20)", run: runAudit})
}

func runAudit(_ context.Context, env *Env, args []string) int {
	fs := newFlags(env, "audit", "BOARD_DIR [--port stm32|esp32|rp2] [--variant NAME] [--manifest manifest.py] [--sdkconfig FILE] [--builtin] [--json]")
	port := fs.String("port", "", "MicroPython port: stm32, esp32 or rp2 (default: detected from the board files)")
	manifest := fs.String("manifest", "", "frozen manifest to audit (default: the board's FROZEN_MANIFEST or manifest.py)")
	sdkconfig := fs.String("sdkconfig", "", "extra ESP-IDF sdkconfig fragment, applied after the board's (esp32)")
	variant := fs.String("variant", "", "board variant to audit (BOARD_VARIANT; default: the board's default build)")
	builtin := fs.Bool("builtin", false, "use only the built-in evaluator, even when the board sits in a MicroPython tree with a C compiler and python3")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos, "BOARD_DIR: the MicroPython board definition folder (ports/PORT/boards/NAME)"); !ok {
		return code
	}
	tools := audit.ToolsAuto
	if *builtin {
		tools = audit.ToolsBuiltin
	}
	r, err := audit.Run(pos[0], audit.Options{Port: *port, Manifest: *manifest, Sdkconfig: *sdkconfig, Variant: *variant, Tools: tools})
	if err != nil {
		return fail(env, "audit", err)
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail(env, "audit", err)
		}
	} else {
		printAudit(env.Stdout, r)
	}
	if r.Count(audit.Open) > 0 || r.Count(audit.Unknown) > 0 || len(r.BuildErrors) > 0 {
		return ExitFound
	}
	return ExitOK
}

func printAudit(w io.Writer, r *audit.Report) {
	variant := "default build"
	if r.Variant != "" {
		variant = "variant " + r.Variant
	}
	fmt.Fprintf(w, "fieldseal audit: board %s (%s), port %s\nvalues from: %s\n", r.Board, variant, r.Port, r.Resolver)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for _, e := range r.BuildErrors {
		fmt.Fprintf(w, "build error: %s\n", e)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCHECK\tTITLE")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.ID, c.Title)
	}
	tw.Flush()
	for _, c := range r.Checks {
		if c.Status == audit.Closed {
			continue
		}
		fmt.Fprintf(w, "\n[%s] %s — %s\n  evidence: %s\n  attack:   %s\n  fix:      %s\n", c.Status, c.ID, c.Title, c.Evidence, c.Attack, c.Fix)
	}
	fmt.Fprintf(w, "\nscore %s — %s\n", r.Score, r.Verdict)
}
