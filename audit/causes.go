package audit

import (
	"regexp"
	"sort"
	"strings"
)

// A fix is easier to act on when it names what caused the finding: the board file and
// line that set the value ("mpconfigvariant_THREAD.mk:1 sets MICROPY_PY_THREAD=1").
var causeRef = regexp.MustCompile(`^((?:mpconfig|sdkconfig|manifest|partitions|boards/)[\w./-]*:\d+): ([A-Z][A-Z0-9_]+)(?: |=)?(.*)$`)

// annotateCauses prefixes the fix of every check that is not closed with the board
// file that decided it, and notes the variants that change a setting it read.
func (b *board) annotateCauses(checks []Check) {
	for i := range checks {
		c := &checks[i]
		if c.Status != Open {
			continue
		}
		first := c.Evidence
		if j := strings.Index(first, "; "); j >= 0 {
			first = first[:j]
		}
		if j := strings.Index(first, " ["); j >= 0 {
			first = first[:j]
		}
		if m := causeRef.FindStringSubmatch(first); m != nil && !strings.HasPrefix(c.Fix, "cause:") {
			kind := "board file"
			if strings.HasPrefix(m[1], "mpconfigvariant") {
				kind = "variant file"
			}
			val := strings.TrimSpace(m[3])
			c.Fix = "cause: " + kind + " " + m[1] + " sets " + m[2] + orEmptyVal(val) + ". Fix: " + c.Fix
		}
	}
	if len(b.variantTouch) == 0 {
		return
	}
	for i := range checks {
		c := &checks[i]
		var notes []string
		for name, files := range b.variantTouch {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).MatchString(c.Evidence) {
				for _, f := range files {
					notes = append(notes, f+" sets "+name)
				}
			}
		}
		if len(notes) > 0 {
			sort.Strings(notes)
			c.Evidence += " (another variant differs: " + strings.Join(notes, ", ") + "; audit it with --variant)"
		}
	}
}

func orEmptyVal(v string) string {
	if v == "" {
		return ""
	}
	return " " + v
}
