package vocabulary

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// rule is one piece of vocabulary: the pattern that spells it out, the files that own
// it, and the files allowed to use the pattern for another reason (with that reason).
type rule struct {
	what    string
	pattern *regexp.Regexp
	owners  []string          // path prefixes, relative to the module root
	allowed map[string]string // file → why it may
}

var rules = []rule{
	{what: "the entry-type → payload table (use wire.DecodePayload / EncodePayload)",
		pattern: regexp.MustCompile(`case wire\.Entry[A-Za-z]+:\s*\n\s*(var \w+ wire\.\w+Payload|v = &wire\.\w+Payload|return &wire\.\w+Payload)|wire\.Unmarshal\([^)]*Payload, &\w+\)\s*[!=]=|var \w+ wire\.\w+Payload\n\s*if wire\.Unmarshal`),
		owners:  []string{"wire/"}},
	{what: "an entry head H(\"fs1/head\" ‖ …) (use the heads fschain.VerifyChunk returns, or fschain.EntryHead)",
		pattern: regexp.MustCompile(`"fs1/head"`),
		owners:  []string{"fschain/"}},
	{what: "MQTT topics (use wire.Topics)",
		pattern: regexp.MustCompile(`"fieldseal/v1/|"/up"|"/down"|\+/up"`),
		owners:  []string{"wire/"},
		allowed: map[string]string{"internal/cli/server.go": "help text naming the default topics",
			"server/lorawan.go": "the LoRaWAN network servers' own topics (ChirpStack, The Things Stack), not fieldseal's"}},
	{what: "the device MQTT password rule (use wire.MQTTPassword)",
		pattern: regexp.MustCompile(`fs1/mqtt-password`),
		owners:  []string{"wire/"}},
	{what: "the report media type (use wire.ReportMediaType)",
		pattern: regexp.MustCompile(`cose-type=|"application/cose"`),
		owners:  []string{"wire/"}},
	{what: "a wire-error → name loop (use wire.ErrorName)",
		pattern: regexp.MustCompile(`\[\]error\{wire\.Err`),
		owners:  []string{"wire/"}},
	{what: "unverified manifest parsing (use wire.ParseManifestUnverified or wire.OpenManifest)",
		pattern: regexp.MustCompile(`ParseSign1\(`),
		owners:  []string{"wire/"},
		allowed: map[string]string{"server/cache.go": "reads the time of the server's own anchor receipt, not a manifest"}},
	{what: "an atomic file write (use atomicfile.Write)",
		pattern: regexp.MustCompile(`os\.Rename\(|\.Sync\(\)`),
		owners:  []string{"internal/atomicfile/"},
		allowed: map[string]string{
			"fschain/storage.go":                   "the evidence log's own storage contract (appends, slots, log replacement); fschain imports nothing of ours",
			"manifest/build.go":                    "swaps a whole compiled app folder into place, not a file",
			"agent/run.go":                         "renames an imported legacy state file aside, not a write",
			"device/micropython/firmware/cache.go": "renames a finished firmware build folder into the test cache",
			"tools/mpy-cross/install.go":           "moves a whole installed npm folder into the cache, not a file",
		}},
}

func TestVocabularyIsWrittenOnce(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above %s: %v", root, err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if name := d.Name(); name == "node_modules" || name == "testdata" || (strings.HasPrefix(name, ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if !r.pattern.Match(src) {
				continue
			}
			if owned(rel, r.owners) {
				continue
			}
			if _, ok := r.allowed[rel]; ok {
				continue
			}
			loc := r.pattern.FindIndex(src)
			line := 1 + strings.Count(string(src[:loc[0]]), "\n")
			t.Errorf("%s:%d re-implements %s", rel, line, r.what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func owned(rel string, owners []string) bool {
	for _, o := range owners {
		if strings.HasPrefix(rel, o) {
			return true
		}
	}
	return false
}

// The patterns catch what they are meant to catch.
func TestRulesCatchCopies(t *testing.T) {
	copies := map[string]string{
		"the entry-type":     "switch typ {\n\tcase wire.EntryBoot:\n\t\tvar p wire.BootPayload\n",
		"an entry head":      `h.Write([]byte("fs1/head"))`,
		"MQTT topics":        `return "fieldseal/v1/" + dev + "/up"`,
		"the device MQTT":    `m.Write([]byte("fs1/mqtt-password"))`,
		"the report media":   "const ct = `application/cose; cose-type=\"cose-mac0\"`",
		"a wire-error":       `for _, e := range []error{wire.ErrBadMAC, wire.ErrMalformed} {`,
		"unverified":         `s, err := wire.ParseSign1(b, wire.MaxManifestSize)`,
		"an atomic":          `return os.Rename(tmp, p)`,
		"the entry-type (2)": "var p wire.RegisterPayload\n\t\t\tif wire.Unmarshal(e.Payload, &p) == nil {",
	}
	for prefix, src := range copies {
		p := strings.TrimSuffix(prefix, " (2)")
		found := false
		for _, r := range rules {
			if strings.HasPrefix(r.what, p) {
				found = true
				if !r.pattern.MatchString(src) {
					t.Errorf("rule %q does not catch %q", r.what, src)
				}
			}
		}
		if !found {
			t.Errorf("no rule %q", p)
		}
	}
}

// Every package says what it is for (house style): a "// Package x" or "// Command x"
// comment in one of its files.
func TestEveryPackageHasADocComment(t *testing.T) {
	root, _ := filepath.Abs("../..")
	dirs := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && p != root)) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = dirs[filepath.Dir(p)] || hasDoc(t, p)
		}
		return nil
	})
	for dir, ok := range dirs {
		if !ok {
			rel, _ := filepath.Rel(root, dir)
			t.Errorf("package %s has no doc comment", rel)
		}
	}
}

func hasDoc(t *testing.T, path string) bool {
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`(?m)^// (Package|Command) \S+`).Match(src)
}
