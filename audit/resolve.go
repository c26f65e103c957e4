package audit

import (
	"fmt"
	"strings"
)

// Resolving settings: a macro's effective value is the board's definition (build
// flags, then mpconfigboard.h), else the modelled port default (defaults.go), else
// undefined. Every answer carries its evidence; "unknown" is an answer, not an error.

// num returns the effective integer value of a macro: the board's definition (build
// flags, then mpconfigboard.h), else the modelled port default, else undefined (0).
// ok=false means unknown; ev always says where the answer came from.
func (b *board) num(name string) (int64, string, bool) { return b.numD(name, 0) }

func (b *board) numD(name string, depth int) (int64, string, bool) {
	if depth > 16 {
		return 0, name + ": macro expansion too deep", false
	}
	if b.hs.broken != "" {
		return 0, b.hs.broken, false
	}
	if pd, has := b.defaults[name]; has && pd.unknown != "" {
		if d, own := b.hs.defs[name]; !own || d.undef || name == "MICROPY_HW_USB_CDC_DTR_RTS_BOOTLOADER" {
			return 0, pd.unknown, false
		}
	}
	if pd, has := b.defaults[name]; has && pd.force != nil {
		if v, ev, ok, applies := b.forcedNum(name, pd.force, depth); applies || !ok {
			return v, ev, ok
		}
	}
	if d, has := b.hs.defs[name]; has && !d.undef {
		if d.unknown != "" {
			return 0, d.unknown, false
		}
		ev := fmt.Sprintf("%s: %s %s", d.where, name, orEmpty(d.value))
		if d.value == "" {
			return 1, ev, true // #define X with no value: only meaningful via defined()
		}
		v, why, refs, ok := b.evalExpr(d.value, depth+1)
		ev = joinEv(ev, refs)
		if !ok {
			return 0, ev + " — " + why, false
		}
		return v, ev, true
	}
	if len(b.hs.opaque) > 0 {
		return 0, b.hs.opaque[0] + " (it may define " + name + ")", false
	}
	if pd, has := b.defaults[name]; has {
		ev := fmt.Sprintf("port default (MicroPython %s, %s): %s = %s", MicroPythonVersion, pd.source, name, pd.expr)
		v, why, refs, ok := b.evalExpr(pd.expr, depth+1)
		ev = joinEv(ev, refs)
		if !ok {
			return 0, ev + " — " + why, false
		}
		return v, ev, true
	}
	if !b.hs.knownUndefined(name) {
		// C would read an undefined name as 0, but a vendor macro may come from a
		// compiler flag or header the audit did not see: do not guess.
		return 0, name + " is not defined in the board files the audit read", false
	}
	if b.real {
		return 0, name + " not defined after preprocessing (read as 0)", true
	}
	return 0, name + " not defined (port default: undefined, MicroPython " + MicroPythonVersion + ")", true
}

// forcedNum evaluates a definition the port makes without #ifndef after the board's
// headers (defaults.go, portForce): when its condition holds it wins over anything
// the board defines. applies=false (with ok) means the condition is false and the
// ordinary rules decide.
func (b *board) forcedNum(name string, f *portForce, depth int) (v int64, ev string, ok, applies bool) {
	var condRefs []string
	if f.when != "" {
		c, why, refs, cok := b.evalExpr(f.when, depth+1)
		if !cok {
			return 0, joinEv(fmt.Sprintf("unguarded definition (MicroPython %s, %s): %s = %s under #if %s", MicroPythonVersion, f.source, name, f.expr, f.when), refs) + " — " + why, false, false
		}
		if c == 0 {
			return 0, "", true, false
		}
		condRefs = refs
	}
	ev = fmt.Sprintf("unguarded definition (MicroPython %s, %s): %s = %s", MicroPythonVersion, f.source, name, f.expr)
	if f.when != "" {
		ev += " under #if " + f.when
	}
	if d, has := b.hs.defs[name]; has && !d.undef && d.unknown == "" {
		ev += fmt.Sprintf(" (overrides %s: %s %s; the compiler warns \"redefined\" and -Werror builds fail)", d.where, name, orEmpty(d.value))
	}
	ev = joinEv(ev, condRefs)
	v, why, refs, ok := b.evalExpr(f.expr, depth+1)
	ev = joinEv(ev, refs)
	if !ok {
		return 0, ev + " — " + why, false, true
	}
	return v, ev, true, true
}

func orEmpty(s string) string {
	if s == "" {
		return "(defined, no value)"
	}
	return s
}

func joinEv(ev string, refs []string) string {
	if len(refs) == 0 {
		return ev
	}
	return ev + " [" + strings.Join(refs, "; ") + "]"
}

// evalExpr evaluates a macro body with identifiers resolved through num.
func (b *board) evalExpr(expr string, depth int) (int64, string, []string, bool) {
	var refs []string
	p := &exprParser{toks: tokenize(expr), lookup: func(name string) (int64, string, bool) {
		v, ev, ok := b.numD(name, depth)
		refs = append(refs, ev)
		if !ok {
			return 0, ev, false
		}
		return v, "", true
	}, defined: func(name string) (tri, string) { return b.isDef(name) }}
	v, why, ok := p.parse()
	return v, why, refs, ok
}

// isDef answers whether the board defines name (port defaults aside).
func (b *board) isDef(name string) (tri, string) {
	if b.hs.broken != "" {
		return triUnknown, b.hs.broken
	}
	if d, has := b.hs.defs[name]; has {
		if d.unknown != "" {
			return triUnknown, d.unknown
		}
		if d.undef {
			return triFalse, d.where + ": #undef " + name
		}
		return triTrue, fmt.Sprintf("%s: %s %s", d.where, name, orEmpty(d.value))
	}
	if len(b.hs.opaque) > 0 {
		return triUnknown, b.hs.opaque[0] + " (it may define " + name + ")"
	}
	if b.real {
		return triFalse, name + " not defined after preprocessing"
	}
	return triFalse, name + " not defined (port default: undefined, MicroPython " + MicroPythonVersion + ")"
}

// allOff: closed when every macro is 0; open when one is not.
func (b *board) allOff(c Check, names ...string) Check {
	var unknown []string
	var evs []string
	for _, n := range names {
		v, ev, ok := b.num(n)
		switch {
		case !ok:
			unknown = append(unknown, ev)
		case v != 0:
			c.Status, c.Evidence = Open, ev
			return c
		default:
			evs = append(evs, ev)
		}
	}
	if len(unknown) > 0 {
		c.Status, c.Evidence = Unknown, strings.Join(dedupe(unknown), "; ")
		return c
	}
	c.Status, c.Evidence = Closed, strings.Join(evs, "; ")
	return c
}

// allOn: the feature exists only when every gate is on. Open when all are on, closed
// when one is known off.
func (b *board) allOn(names ...string) (Status, string) {
	var unknown, on []string
	for _, n := range names {
		v, ev, ok := b.num(n)
		switch {
		case !ok:
			unknown = append(unknown, ev)
		case v == 0:
			return Closed, ev
		default:
			on = append(on, ev)
		}
	}
	if len(unknown) > 0 {
		return Unknown, strings.Join(dedupe(unknown), "; ")
	}
	return Open, strings.Join(on, "; ")
}

func (b *board) gated(c Check, names ...string) Check {
	c.Status, c.Evidence = b.allOn(names...)
	return c
}

// sc returns an sdkconfig option, "n" when no fragment sets it.
func (b *board) scVal(name string) (string, string, bool) {
	if len(b.sc.problems) > 0 {
		return "", b.sc.problems[0], false
	}
	if v, ok := b.sc.vals[name]; ok {
		return v, b.sc.where[name] + ": " + name + "=" + v, true
	}
	return "n", name + " not set: ESP-IDF default off (MicroPython " + MicroPythonVersion + " port fragments leave it unset)", true
}
