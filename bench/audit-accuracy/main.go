// Command audit-accuracy measures `fieldseal audit` against ground truth on every board
// of a MicroPython checkout: each board is audited twice, once with the built-in
// evaluator (what a user without the MicroPython tree or a compiler gets) and once with
// MicroPython's own tools (the C preprocessor over the port headers and
// tools/manifestfile.py), and every claim of the first is compared with the second.
//
//	go run ./bench/audit-accuracy -mpy ~/src/micropython -lib ~/src/micropython-lib -j 2
//
// It is a measurement, not a test: it needs a checkout of micropython/micropython
// (never part of this repository) and takes about a minute per port on two cores.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/fieldseal/fieldseal/audit"
)

type tally struct {
	boards, claims, right, falseClosed, falseOpen, unknown, truthUnknown, errors int
	truthOpen, truthClosed                                                       int
	notes                                                                        []string
}

func main() {
	mpy := flag.String("mpy", os.Getenv("MICROPYTHON_DIR"), "MicroPython checkout (its ports/<port>/boards are audited)")
	lib := flag.String("lib", "", "micropython-lib checkout for manifestfile.py (default <mpy>/lib/micropython-lib)")
	ports := flag.String("ports", "stm32,esp32,rp2", "ports to measure")
	jobs := flag.Int("j", 2, "boards audited in parallel (keep it small on shared machines)")
	verbose := flag.Bool("v", false, "print every disagreement")
	outside := flag.Bool("outside", false, "audit a copy of each board kept outside the tree (with --port), as a vendor keeps it: measures the modelled port defaults")
	baseline := flag.String("baseline", "", "also score another fieldseal binary's `audit --json` claims (e.g. an earlier release) against the same ground truth")
	flag.Parse()
	if *mpy == "" {
		fmt.Fprintln(os.Stderr, "audit-accuracy: -mpy DIR (a MicroPython checkout) is required")
		os.Exit(2)
	}
	if *jobs < 1 || *jobs > 2 {
		*jobs = 2
	}
	fmt.Printf("audit accuracy: built-in evaluator vs MicroPython's tools, tree %s\n\n", *mpy)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "port\tboards\tclaims\tright\twrong: false closed\twrong: false open\tunknown\tright %\tunknown %\ttruth open/closed/unknown\terrors\t")
	var all []string
	for _, port := range strings.Split(*ports, ",") {
		t := measure(*mpy, *lib, port, *jobs, *baseline, *outside)
		// Percentages are of the claims that have a ground truth.
		pct := func(n int) string {
			known := t.claims - t.truthUnknown
			if known == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", 100*float64(n)/float64(known))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d/%d/%d\t%d\t\n", port, t.boards, t.claims, t.right, t.falseClosed, t.falseOpen, t.unknown, pct(t.right), pct(t.unknown), t.truthOpen, t.truthClosed, t.truthUnknown, t.errors)
		all = append(all, t.notes...)
	}
	tw.Flush()
	if *verbose || len(all) <= 40 {
		sort.Strings(all)
		for _, n := range all {
			fmt.Println(n)
		}
	} else {
		fmt.Printf("\n%d disagreements (-v lists them)\n", len(all))
	}
}

// manifestChecks are decided by the frozen set; when manifestfile.py cannot run on a
// board (a library submodule missing from the checkout) they have no ground truth.
var manifestChecks = map[string]bool{"guard-frozen": true, "guard-boot": true, "boot-path": true, "manifest-frozen": true, "webrepl-mip": true}

func boardDirs(mpy, port string) []string {
	ext := ".cmake"
	if port == "stm32" {
		ext = ".mk"
	}
	ents, _ := os.ReadDir(filepath.Join(mpy, "ports", port, "boards"))
	var out []string
	for _, e := range ents {
		d := filepath.Join(mpy, "ports", port, "boards", e.Name())
		if _, err := os.Stat(filepath.Join(d, "mpconfigboard"+ext)); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// claimsOf returns the claims to score: this build's built-in evaluator, or the JSON
// report of a baseline binary.
func claimsOf(d, port, baseline string, outside bool) (*audit.Report, error) {
	if outside {
		tmp, err := os.MkdirTemp("", "audit-accuracy-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		copyOut := filepath.Join(tmp, filepath.Base(d))
		if err := exec.Command("cp", "-r", d, copyOut).Run(); err != nil {
			return nil, err
		}
		return audit.Run(copyOut, audit.Options{Tools: audit.ToolsBuiltin, Port: port})
	}
	if baseline == "" {
		return audit.Run(d, audit.Options{Tools: audit.ToolsBuiltin})
	}
	out, err := exec.Command(baseline, "audit", "--json", d).Output()
	if len(out) == 0 {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("%s", strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, err
	}
	var r audit.Report
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func measure(mpy, lib, port string, jobs int, baseline string, outside bool) tally {
	dirs := boardDirs(mpy, port)
	var mu sync.Mutex
	var t tally
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, d := range dirs {
		wg.Add(1)
		sem <- struct{}{}
		go func(d string) {
			defer wg.Done()
			defer func() { <-sem }()
			claim, err1 := claimsOf(d, port, baseline, outside)
			truth, err2 := audit.Run(d, audit.Options{Tools: audit.ToolsRequire, MicroPythonLib: lib})
			mu.Lock()
			defer mu.Unlock()
			t.boards++
			name := port + "/" + filepath.Base(d)
			if err1 != nil || err2 != nil {
				t.errors++
				t.notes = append(t.notes, fmt.Sprintf("%s: error: built-in %v; tools %v", name, err1, err2))
				return
			}
			manifestTruth := true
			for _, w := range truth.Warnings {
				if strings.Contains(w, "manifestfile.py") {
					manifestTruth = false
					t.notes = append(t.notes, name+": no manifest ground truth: "+w)
				}
			}
			for _, c := range claim.Checks {
				tc, ok := truth.Find(c.ID)
				if !ok {
					continue
				}
				t.claims++
				switch tc.Status {
				case audit.Open:
					t.truthOpen++
				case audit.Closed:
					t.truthClosed++
				}
				switch {
				case !manifestTruth && manifestChecks[c.ID]:
					t.truthUnknown++
				case tc.Status == audit.Unknown:
					t.truthUnknown++
					t.notes = append(t.notes, fmt.Sprintf("%s %s: truth unknown: %s", name, c.ID, tc.Evidence))
				case c.Status == audit.Unknown:
					t.unknown++
					t.notes = append(t.notes, fmt.Sprintf("%s %s: unknown (truth %s): %s", name, c.ID, tc.Status, c.Evidence))
				case c.Status == tc.Status:
					t.right++
				case c.Status == audit.Closed:
					t.falseClosed++
					t.notes = append(t.notes, fmt.Sprintf("%s %s: FALSE CLOSED: claim %s | truth %s", name, c.ID, c.Evidence, tc.Evidence))
				default:
					t.falseOpen++
					t.notes = append(t.notes, fmt.Sprintf("%s %s: false open: claim %s | truth %s", name, c.ID, c.Evidence, tc.Evidence))
				}
			}
		}(d)
	}
	wg.Wait()
	return t
}
