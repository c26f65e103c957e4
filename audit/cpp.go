package audit

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// This file is the small C-preprocessor subset the audit needs for mpconfigboard.h:
// #define/#undef, #if/#ifdef/#ifndef/#elif/#else/#endif over integer expressions of
// macros it knows. It is not a C preprocessor: anything it cannot evaluate makes the
// affected macros unknown (with file:line), so a check never passes on a guess.

// macroDef is one macro as the board files leave it.
type macroDef struct {
	value   string // replacement text, trimmed; "" for #define X
	where   string // file:line
	unknown string // non-empty: the value cannot be known, and why (file:line: reason)
	undef   bool   // #undef seen: behaves as not defined
}

// headerSet is the result of preprocessing the board's headers and -D flags.
type headerSet struct {
	defs map[string]*macroDef
	// broken is set when the file's structure is unusable (unterminated #if, stray
	// #endif): every lookup that would come from the header is then unknown.
	broken string
	// opaque lists #include lines the audit could not follow; a macro not defined by
	// the board might be defined there, so port defaults become unknown.
	opaque []string
	// undefFamilies match names the board's build defines from a pattern
	// (-DWEACT_F411_V$(BOARD_VERSION)=1): any other member is known to be undefined.
	undefFamilies []*regexp.Regexp
	// complete: the table is the real preprocessor's, so a name not in it is undefined.
	complete bool
}

// knownUndefined reports a name the build files show is not defined.
func (hs *headerSet) knownUndefined(name string) bool {
	if hs.complete || knownNamespace(name) {
		return true
	}
	for _, re := range hs.undefFamilies {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

func newHeaderSet() *headerSet { return &headerSet{defs: map[string]*macroDef{}} }

// condFrame is one level of #if nesting.
type condFrame struct {
	state   tri    // triTrue: this branch is live; triFalse: skipped; triUnknown: cannot tell
	taken   tri    // whether an earlier branch of this #if was live
	where   string // file:line of the #if
	why     string // reason when unknown
	parent  tri    // liveness of the enclosing block
	sawElse bool
}

// includeFunc resolves `#include "name"` relative to the board; ok=false when it
// cannot (the include is then recorded as opaque).
type includeFunc func(name string) (text string, file string, ok bool)

// preprocess runs the subset over text (named file for evidence) into hs.
func (hs *headerSet) preprocess(file, text string, include includeFunc, depth int) {
	lines := logicalLines(stripComments(text))
	var stack []*condFrame
	live := func() tri {
		if len(stack) == 0 {
			return triTrue
		}
		return stack[len(stack)-1].state
	}
	unknownWhy := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].state == triUnknown {
				return stack[i].why
			}
		}
		return ""
	}
	for _, ln := range lines {
		where := fmt.Sprintf("%s:%d", file, ln.no)
		s := strings.TrimSpace(ln.text)
		if !strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimSpace(s[1:])
		dir, rest := splitWord(s)
		rest = strings.TrimSpace(rest)
		switch dir {
		case "if", "ifdef", "ifndef":
			parent := live()
			f := &condFrame{where: where, parent: parent}
			var v tri
			var why string
			switch dir {
			case "if":
				v, why = hs.evalCond(rest)
			case "ifdef":
				v, why = hs.isDefined(rest)
			case "ifndef":
				v, why = hs.isDefined(rest)
				v = v.not()
			}
			if why != "" {
				why = where + ": " + why
			}
			f.state, f.taken, f.why = andTri(parent, v), v, why
			if parent == triUnknown && f.why == "" {
				f.why = unknownWhy()
			}
			stack = append(stack, f)
		case "elif", "else":
			if len(stack) == 0 {
				hs.fail(fmt.Sprintf("%s: #%s without #if", where, dir))
				return
			}
			f := stack[len(stack)-1]
			if f.sawElse {
				hs.fail(fmt.Sprintf("%s: #%s after #else", where, dir))
				return
			}
			var v tri = triTrue
			var why string
			if dir == "elif" {
				v, why = hs.evalCond(rest)
				if why != "" {
					why = where + ": " + why
				}
			} else {
				f.sawElse = true
			}
			// this branch is live if no earlier branch was and its condition holds
			branch := andTri(f.taken.not(), v)
			if f.taken == triUnknown && why == "" {
				why = f.why
			}
			f.state = andTri(f.parent, branch)
			f.taken = orTri(f.taken, v)
			f.why = why
			if f.state == triUnknown && f.why == "" {
				f.why = f.where + ": earlier branch cannot be evaluated"
			}
		case "endif":
			if len(stack) == 0 {
				hs.fail(where + ": #endif without #if")
				return
			}
			stack = stack[:len(stack)-1]
		case "define":
			name, val := splitMacro(rest)
			if name == "" {
				hs.fail(where + ": #define without a name")
				return
			}
			switch live() {
			case triTrue:
				hs.defs[name] = &macroDef{value: strings.TrimSpace(val), where: where}
			case triUnknown:
				hs.defs[name] = &macroDef{value: strings.TrimSpace(val), where: where,
					unknown: where + ": defined under a condition the audit cannot evaluate (" + unknownWhy() + ")"}
			}
		case "undef":
			name, _ := splitWord(rest)
			switch live() {
			case triTrue:
				hs.defs[name] = &macroDef{where: where, undef: true}
			case triUnknown:
				hs.defs[name] = &macroDef{where: where, unknown: where + ": #undef under a condition the audit cannot evaluate"}
			}
		case "include":
			if live() == triFalse {
				continue
			}
			if strings.HasPrefix(rest, "<") {
				// A system header (<stdint.h>, <stddef.h>) defines no board setting.
				continue
			}
			name := strings.Trim(rest, "\"<> \t")
			if depth < 8 && include != nil && live() == triTrue {
				if t, f, ok := include(name); ok {
					hs.preprocess(f, t, include, depth+1)
					if hs.broken != "" {
						return
					}
					continue
				}
			}
			hs.opaque = append(hs.opaque, where+": #include "+rest+" not followed")
		case "error", "warning", "pragma", "line", "":
			// no effect on settings
		default:
			if live() != triFalse {
				hs.opaque = append(hs.opaque, where+": unsupported directive #"+dir)
			}
		}
	}
	if len(stack) > 0 {
		hs.fail(stack[len(stack)-1].where + ": unterminated #" + "if (no matching #endif)")
	}
}

func (hs *headerSet) fail(msg string) {
	if hs.broken == "" {
		hs.broken = msg
	}
}

// isDefined answers #ifdef NAME as seen inside the board header. Port defaults are not
// yet defined at that point (ports include mpconfigboard.h first), so a name the audit
// has a port default for counts as undefined; any other unseen name is unknown unless
// it is in a namespace whose -D flags the audit reads (MICROPY_, FIELDSEAL_, MBOOT_).
func (hs *headerSet) isDefined(name string) (tri, string) {
	name, _ = splitWord(strings.TrimSpace(name))
	if d, ok := hs.defs[name]; ok {
		if d.unknown != "" {
			return triUnknown, "whether " + name + " is defined is unknown (" + d.unknown + ")"
		}
		return triBool(!d.undef), ""
	}
	if hs.knownUndefined(name) {
		return triFalse, ""
	}
	return triUnknown, "cannot tell whether " + name + " is defined"
}

func knownNamespace(name string) bool {
	for _, p := range []string{"MICROPY_", "FIELDSEAL_", "MBOOT_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (hs *headerSet) evalCond(expr string) (tri, string) {
	p := &exprParser{toks: tokenize(expr), lookup: func(name string) (int64, string, bool) {
		if d, ok := hs.defs[name]; ok {
			if d.unknown != "" {
				return 0, d.unknown, false
			}
			if d.undef {
				return 0, "", true
			}
			return hs.evalValue(d.value, 0)
		}
		if hs.knownUndefined(name) {
			return 0, "", true // undefined in #if is 0
		}
		return 0, "cannot evaluate " + name, false
	}, defined: hs.isDefined}
	v, why, ok := p.parse()
	if !ok {
		if why == "" {
			why = "cannot evaluate #if " + expr
		}
		return triUnknown, why
	}
	return triBool(v != 0), ""
}

func (hs *headerSet) evalValue(text string, depth int) (int64, string, bool) {
	if depth > 16 {
		return 0, "macro expansion too deep", false
	}
	p := &exprParser{toks: tokenize(text), lookup: func(name string) (int64, string, bool) {
		if d, ok := hs.defs[name]; ok && d.unknown == "" && !d.undef {
			return hs.evalValue(d.value, depth+1)
		}
		return 0, "cannot evaluate " + name, false
	}, defined: hs.isDefined}
	return p.parse()
}

// tri is a three-valued truth: the audit's "unknown" is a first-class answer.
type tri int

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

func triBool(b bool) tri {
	if b {
		return triTrue
	}
	return triFalse
}

func (t tri) not() tri {
	switch t {
	case triTrue:
		return triFalse
	case triFalse:
		return triTrue
	}
	return triUnknown
}

func andTri(a, b tri) tri {
	if a == triFalse || b == triFalse {
		return triFalse
	}
	if a == triTrue && b == triTrue {
		return triTrue
	}
	return triUnknown
}

func orTri(a, b tri) tri {
	if a == triTrue || b == triTrue {
		return triTrue
	}
	if a == triFalse && b == triFalse {
		return triFalse
	}
	return triUnknown
}

type logicalLine struct {
	no   int
	text string
}

// logicalLines joins backslash continuations, keeping the first physical line number.
func logicalLines(text string) []logicalLine {
	var out []logicalLine
	phys := strings.Split(text, "\n")
	for i := 0; i < len(phys); i++ {
		start := i + 1
		l := strings.TrimRight(phys[i], "\r")
		for strings.HasSuffix(l, "\\") && i+1 < len(phys) {
			i++
			l = l[:len(l)-1] + " " + strings.TrimRight(phys[i], "\r")
		}
		out = append(out, logicalLine{no: start, text: l})
	}
	return out
}

// stripComments removes C comments, keeping newlines so line numbers stay right.
func stripComments(s string) string {
	var b strings.Builder
	inStr := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr != 0 {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == inStr || c == '\n' {
				inStr = 0
			}
			continue
		}
		if c == '"' || c == '\'' {
			inStr = c
			b.WriteByte(c)
			continue
		}
		if c == '/' && i+1 < len(s) && s[i+1] == '/' {
			for i < len(s) && s[i] != '\n' {
				i++
			}
			if i < len(s) {
				b.WriteByte('\n')
			}
			continue
		}
		if c == '/' && i+1 < len(s) && s[i+1] == '*' {
			i += 2
			for i < len(s) && !(s[i] == '*' && i+1 < len(s) && s[i+1] == '/') {
				if s[i] == '\n' {
					b.WriteByte('\n')
				}
				i++
			}
			i++ // past '/'
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func splitWord(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '(' })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// splitMacro splits "NAME value" and rejects function-like macros' parameter lists
// from the name ("NAME(x) body" keeps the whole body as the value).
func splitMacro(s string) (string, string) {
	s = strings.TrimLeft(s, " \t")
	i := 0
	for i < len(s) && (s[i] == '_' || unicode.IsLetter(rune(s[i])) || (i > 0 && unicode.IsDigit(rune(s[i])))) {
		i++
	}
	name := s[:i]
	rest := s[i:]
	if strings.HasPrefix(rest, "(") { // function-like: value is the rest
		return name, rest
	}
	return name, rest
}
