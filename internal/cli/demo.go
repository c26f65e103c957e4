package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/internal/demo"
	"github.com/fieldseal/fieldseal/store"
)

func init() {
	register(verb{name: "demo", summary: "the whole story on one machine: server, a simulated town, attacks, verdict", run: runDemo})
}

func runDemo(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "demo", "[--meters N] [--for DURATION] [--speed X] [--json] [--open] [--data DIR] [--micropython N] [--lorawan-broker URL|off]")
	meters := fs.Int("meters", 500, "household meters to simulate (plus one inlet meter per 100)")
	dur := fs.Duration("for", 45*time.Second, "wall-clock time the simulation runs")
	speed := fs.Float64("speed", 0, "virtual seconds per wall second (default: one virtual day in --for)")
	asJSON := fs.Bool("json", false, "print the verdict as JSON on stdout (progress goes to stderr)")
	open := fs.Bool("open", false, "open the dashboard in a browser and keep the server running until Ctrl-C")
	data := fs.String("data", "", "server data folder to keep (default: a temporary folder, removed at the end)")
	seed := fs.Uint64("seed", 1, "random seed: victims, consumption, offline periods")
	mp := fs.Int("micropython", 0, "also run N meters as the real MicroPython guard (needs Node.js and mpy-cross)")
	lorawan := fs.String("lorawan-broker", "", `MQTT broker of the LoRaWAN district's network server (ChirpStack format), e.g. tcp://127.0.0.1:1883 for Mosquitto; default the server's embedded broker; "off": no LoRaWAN district`)
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	switch {
	case *meters < 1:
		return usageError(env, fs, "--meters %d: want at least 1 meter", *meters)
	case *dur <= 0:
		return usageError(env, fs, "--for %s: want a wall-clock duration above zero, e.g. 45s", *dur)
	case *lorawan != "" && *lorawan != "off" && !strings.Contains(*lorawan, "://"):
		return usageError(env, fs, "--lorawan-broker %s: want a broker URL such as tcp://127.0.0.1:1883, or off", *lorawan)
	case *speed < 0:
		return usageError(env, fs, "--speed %g: want virtual seconds per wall second above zero (or 0 for one day in --for)", *speed)
	}
	progress := env.Stdout
	if *asJSON {
		progress = env.Stderr
	}
	o := demo.Options{Meters: *meters, For: *dur, Speed: *speed, DataDir: *data, Seed: *seed, MicroPython: *mp, LoRaWANBroker: *lorawan,
		Progress: progress, Terminal: isTerminal(progress)}
	if *open {
		o.Hold = func(r *demo.Result, _ store.Store) {
			if !*asJSON {
				demo.PrintTable(env.Stdout, r)
			}
			if r.Dashboard != "" {
				openBrowser(r.Dashboard)
				fmt.Fprintf(progress, "dashboard open at %s — Ctrl-C to stop\n", r.Dashboard)
			}
			<-ctx.Done()
		}
	}
	r, err := demo.Run(ctx, o)
	if err != nil {
		return fail(env, "demo", err)
	}
	// The server has stopped by now: a dashboard link (with its admin token) would lead
	// nowhere.
	r.Dashboard = ""
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else if !*open {
		demo.PrintTable(env.Stdout, r)
		fmt.Fprintln(env.Stdout, "(run 'fieldseal demo --open' to keep the server running and browse this fleet in the dashboard)")
	}
	if !r.OK {
		return ExitFound
	}
	return ExitOK
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if cmd.Start() == nil {
		go cmd.Wait()
	}
}
