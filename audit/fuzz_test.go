package audit

import (
	"strings"
	"testing"
)

// FuzzPreprocess: the preprocessor subset must never panic or loop, and a header it
// calls broken must not leave live definitions that a check could read as closed.
func FuzzPreprocess(f *testing.F) {
	for _, s := range []string{
		"#define MICROPY_HW_ENABLE_USB (0)\n",
		"#if A\n#define B 1\n#elif C\n#else\n#endif\n",
		"#if (1\n#endif\n",
		"#define X ((1 ? 2 : 3) / 0)\n",
		"/* unterminated comment\n#define A 1\n",
		"#define S \"str\\\"ing\"\n#if defined X && !defined(Y)\n#endif\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		hs := newHeaderSet()
		hs.preprocess("f.h", src, func(string) (string, string, bool) { return src, "g.h", true }, 6)
		for _, d := range hs.defs {
			if d.unknown == "" && !d.undef {
				hs.evalValue(d.value, 0)
			}
		}
	})
}

// FuzzManifest: the manifest reader must never panic; whatever it cannot read must be
// reported, so the audit cannot treat an unreadable manifest as a clean one.
func FuzzManifest(f *testing.F) {
	for _, s := range []string{
		"include(\"$(PORT_DIR)/boards/manifest.py\")\n",
		"package(\n  \"fieldseal\",\n  base_path=\"x\",\n)\n",
		"freeze('$(BOARD_DIR)/m', ('_boot.py', 'a.py'))\nrequire(\"mip\")\n",
		"if x:\n    require('webrepl')\n",
		"module(r'a.py', base_path=\"b\" \"c\")\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		calls, unparsed := parseManifest("m.py", src)
		// every non-blank, non-comment line is either part of a call or reported
		if len(calls) == 0 && len(unparsed) == 0 {
			for _, ln := range strings.Split(src, "\n") {
				s := strings.TrimSpace(ln)
				if s != "" && !strings.HasPrefix(s, "#") && strings.Trim(s, "\\\r\t ") != "" {
					t.Fatalf("line %q neither parsed nor reported", ln)
				}
			}
		}
	})
}

// FuzzBootPath: the boot-file reader must never panic, and it may call a file closed
// only when a trim to ".frozen" comes before any shadowable import.
func FuzzBootPath(f *testing.F) {
	for _, s := range []string{
		"import sys\nsys.path[:] = [\".frozen\"]\nimport fieldseal.boot\n",
		"import sys; sys.path[:] = ['.frozen']  # x\n",
		"import fieldseal.boot\n",
		"import sys\nsys.path.clear()\nsys.path.append(\".frozen\")\n",
		"\"\"\"doc\"\"\"\nimport sys, os\n",
		"import sys\nsys.path[:] = [\".frozen\", '/x']\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		st, ev := analyseBootPath("b.py", src)
		if ev == "" {
			t.Fatal("no evidence")
		}
		if st == Closed && !strings.Contains(ev, ".frozen") {
			t.Fatalf("closed without a trim: %s", ev)
		}
	})
}

// FuzzShellWords: splitting a make command line never panics and never invents text.
func FuzzShellWords(f *testing.F) {
	for _, s := range []string{`-DA="(1 * 2)" -DB='x y'`, `-DX=\"q\"`, `"unterminated`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := 0
		for _, w := range shellWords(s) {
			n += len(w)
		}
		if n > len(s) {
			t.Fatalf("%q: words longer than the input", s)
		}
	})
}
