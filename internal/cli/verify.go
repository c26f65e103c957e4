package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "verify", summary: "check a folder against a signed manifest (exit 1 on tamper)", run: runVerify})
}

// verifyReport is the --json output.
type verifyReport struct {
	Clean    bool               `json:"clean"`
	Product  string             `json:"product"`
	Version  uint64             `json:"version"`
	Root     string             `json:"root"`
	Dir      string             `json:"dir"`
	Files    int                `json:"files"`
	Checked  int                `json:"checked"`
	Bytes    uint64             `json:"bytes"`
	Mutable  int                `json:"mutable"`
	Ignored  int                `json:"ignored"`
	Seconds  float64            `json:"seconds"`
	Findings []manifest.Finding `json:"findings"`
	Error    string             `json:"error,omitempty"`
}

func runVerify(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "verify", "DIR --manifest M --pub KEY.pub [--json]")
	manPath := fs.String("manifest", "", "signed manifest (default: DIR/manifest.cose when DIR is a build's output folder)")
	pubPath := fs.String("pub", "", "vendor public key (from 'fieldseal keygen')")
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	workers := fs.Int("workers", 0, "files hashed at once (default: one per core)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos, "DIR: the folder to check (or a build's output folder)"); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "pub"); !ok {
		return code
	}
	dir := pos[0]
	failJSON := func(err error) int {
		if *asJSON {
			json.NewEncoder(env.Stdout).Encode(verifyReport{Dir: dir, Error: err.Error(), Findings: []manifest.Finding{}})
		}
		return fail(env, "verify", err)
	}
	if *manPath == "" {
		// A build's output folder: DIST/manifest.cose seals DIST/app.
		cand := filepath.Join(dir, manifest.ManifestFile)
		if _, err := os.Stat(cand); err != nil {
			if *asJSON {
				json.NewEncoder(env.Stdout).Encode(verifyReport{Dir: dir, Error: "missing --manifest", Findings: []manifest.Finding{}})
			}
			return usageError(env, fs, "missing --manifest (%s holds no %s, so it is not a build's output folder)", dir, manifest.ManifestFile)
		}
		*manPath = cand
		if st, err := os.Stat(filepath.Join(dir, manifest.AppDir)); err == nil && st.IsDir() {
			dir = filepath.Join(dir, manifest.AppDir)
		}
	}
	pub, err := keys.LoadPublic(*pubPath)
	if err != nil {
		return failJSON(err)
	}
	data, err := readLimited(*manPath, wire.MaxManifestSize)
	if err != nil {
		return failJSON(fmt.Errorf("manifest: %w", err))
	}
	m, err := wire.OpenManifest(data, pub)
	if errors.Is(err, wire.ErrUnknownKey) {
		return failJSON(fmt.Errorf("manifest %s is not signed by --pub %s (key id %x): %w; give the public key of the vendor key that sealed it", *manPath, *pubPath, wire.KeyID(pub), err))
	}
	if err != nil {
		return failJSON(fmt.Errorf("manifest %s rejected: %w", *manPath, err))
	}
	var total uint64
	for _, f := range m.Files {
		total += f.Size
	}
	bar := newProgress(env, "verify")
	start := time.Now()
	res, err := manifest.VerifyTree(ctx, dir, m, manifest.VerifyOptions{
		Workers:  *workers,
		Progress: func(_ int, b uint64) { bar.set("hash", int64(b), int64(total), "bytes") },
	})
	bar.finish()
	if err != nil {
		return failJSON(err)
	}
	elapsed := time.Since(start)
	if *asJSON {
		rep := verifyReport{
			Clean: res.Clean(), Product: m.Product, Version: m.Version, Root: hex.EncodeToString(m.Root), Dir: dir,
			Files: res.Files, Checked: res.Checked, Bytes: res.Bytes, Mutable: res.Mutable, Ignored: res.Ignored,
			Seconds: elapsed.Seconds(), Findings: res.Findings,
		}
		if rep.Findings == nil {
			rep.Findings = []manifest.Finding{}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, f := range res.Findings {
			if f.Detail != "" {
				fmt.Fprintf(env.Stdout, "%-10s %s (%s)\n", f.Kind, f.Path, f.Detail)
			} else {
				fmt.Fprintf(env.Stdout, "%-10s %s\n", f.Kind, f.Path)
			}
		}
		verdict := "clean"
		if !res.Clean() {
			verdict = fmt.Sprintf("TAMPERED: %d finding(s)", len(res.Findings))
		}
		mbps := float64(res.Bytes) / (1 << 20) / max(elapsed.Seconds(), 1e-9)
		fmt.Fprintf(env.Stdout, "%s — %s version %d, %d of %d files verified, %d bytes in %s (%.0f MiB/s)\n",
			verdict, m.Product, m.Version, res.Checked, res.Files, res.Bytes, elapsed.Round(time.Millisecond), mbps)
	}
	if !res.Clean() {
		return ExitFound
	}
	return ExitOK
}

// progress draws a one-line bar on stderr when stderr is a terminal, at most ten times a
// second; elsewhere it does nothing. set is safe for concurrent use.
type progress struct {
	w       io.Writer
	verb    string
	on      bool
	mu      sync.Mutex
	last    atomic.Int64 // unix nanos of the last draw
	start   time.Time
	printed bool
}

func newProgress(env *Env, verb string) *progress {
	p := &progress{w: env.Stderr, verb: verb, start: time.Now()}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

func (p *progress) set(stage string, done, total int64, unit string) {
	if !p.on {
		return
	}
	now := time.Now().UnixNano()
	if last := p.last.Load(); now-last < int64(100*time.Millisecond) && done < total {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last.Store(now)
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < n {
			bar[i] = '#'
		}
	}
	amount := fmt.Sprintf("%d/%d %s", done, total, unit)
	if unit == "bytes" {
		amount = fmt.Sprintf("%.0f/%.0f MiB", float64(done)/(1<<20), float64(total)/(1<<20))
	}
	fmt.Fprintf(p.w, "\r%s %-7s [%s] %3.0f%% %s   ", p.verb, stage, bar, frac*100, amount)
	p.printed = true
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
