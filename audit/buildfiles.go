package audit

import (
	"fmt"
	"regexp"
	"strings"
)

// buildVars holds what the audit reads from mpconfigboard.mk / mpconfigboard.cmake:
// variables, -D defines, and what it could not interpret.
type buildVars struct {
	vars    map[string][]string // name -> values (space-separated words, in order)
	where   map[string]string   // name -> file:line of the last assignment
	cond    map[string]string   // name -> file:line when assigned under a condition
	defines []cmdDefine         // -DNAME=VALUE / MICROPY_DEF_BOARD entries
	// opaque lists includes of build files the audit could not follow: a variable or
	// -D flag it did not see may be set there.
	opaque []string
	// include resolves an include of another build file (port-relative or with
	// $(BOARD_DIR)/${MICROPY_BOARD_DIR}); nil means includes are not followed.
	include func(path string) (text, file string, ok bool)
	// model answers includes of port build files that are not on disk (a board kept
	// outside a MicroPython tree): true when the include is modelled (defaults.go).
	model func(b *buildVars, path, where string) bool
	depth int
}

type cmdDefine struct {
	name, value, where string
	cond               bool
}

func newBuildVars() *buildVars {
	return &buildVars{vars: map[string][]string{}, where: map[string]string{}, cond: map[string]string{}}
}

func (b *buildVars) get(name string) (string, bool) {
	v, ok := b.vars[name]
	return strings.Join(v, " "), ok
}

// parseMk reads make-style assignments: VAR = v, VAR := v, VAR ?= v, VAR += v, and
// -D flags in CFLAGS*. Anything inside ifeq/ifdef blocks counts as conditional.
func (b *buildVars) parseMk(file, text string) {
	depth := 0
	for _, ln := range logicalLines(text) {
		s := ln.text
		if i := strings.Index(s, "#"); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", file, ln.no)
		w, rest := splitWord(s)
		switch w {
		case "include", "-include", "sinclude":
			for _, f := range strings.Fields(rest) {
				b.includeFile(f, w != "include", where, b.parseMk)
			}
			continue
		case "ifeq", "ifneq", "ifdef", "ifndef":
			depth++
			continue
		case "endif":
			if depth > 0 {
				depth--
			}
			continue
		case "else":
			continue
		}
		var name, op, val string
		for _, o := range []string{":=", "?=", "+=", "="} {
			if i := strings.Index(s, o); i > 0 {
				name, op, val = strings.TrimSpace(s[:i]), o, strings.TrimSpace(s[i+len(o):])
				break
			}
		}
		if name == "" || strings.ContainsAny(name, " \t") {
			continue // rules, includes, export lines: no settings the audit uses
		}
		words := strings.Fields(val)
		b.assign(name, op, words, where, depth > 0)
		if strings.HasPrefix(name, "CFLAGS") || name == "COPT" {
			// The shell splits the compiler line and removes its quotes:
			// -DX="(A * B)" is one flag with the value (A * B).
			for _, wd := range shellWords(val) {
				if strings.HasPrefix(wd, "-D") {
					b.addDefine(wd[2:], where, depth > 0)
				}
			}
		}
	}
}

// includeFile follows an include of another build file. A file that cannot be found
// makes the build opaque (unless the include is optional, as make's -include and
// cmake's OPTIONAL are, or a modelled port file).
func (b *buildVars) includeFile(path string, optional bool, where string, parse func(file, text string)) {
	if b.depth > 8 {
		b.opaque = append(b.opaque, where+": build-file includes nested too deep")
		return
	}
	if b.include != nil {
		if text, file, ok := b.include(path); ok {
			b.depth++
			parse(file, text)
			b.depth--
			return
		}
	}
	if b.model != nil && b.model(b, path, where) {
		return
	}
	if optional {
		return
	}
	b.opaque = append(b.opaque, where+": include "+path+" not followed (it may set build variables)")
}

func (b *buildVars) assign(name, op string, words []string, where string, cond bool) {
	switch op {
	case "?=":
		if _, ok := b.vars[name]; ok {
			return
		}
		b.vars[name] = words
	case "+=":
		b.vars[name] = append(b.vars[name], words...)
	default:
		b.vars[name] = words
	}
	b.where[name] = where
	if cond {
		b.cond[name] = where
	}
}

func (b *buildVars) addDefine(def, where string, cond bool) {
	if len(def) >= 2 && (def[0] == '"' || def[0] == '\'') && def[len(def)-1] == def[0] {
		def = def[1 : len(def)-1] // the whole flag was quoted: "-DNAME=value"
	}
	name, val, found := strings.Cut(def, "=")
	if !found {
		val = "1" // -DNAME means 1, as in the compiler
	}
	b.defines = append(b.defines, cmdDefine{name: name, value: val, where: where, cond: cond})
}

// parseCmake reads set(VAR v...) and list(APPEND VAR v...) with ${VAR} references
// left for later expansion. Commands inside if()/endif() count as conditional.
func (b *buildVars) parseCmake(file, text string) {
	depth := 0
	for _, c := range cmakeCommands(text) {
		where := fmt.Sprintf("%s:%d", file, c.line)
		switch strings.ToLower(c.name) {
		case "if", "foreach", "function", "macro", "while":
			depth++
		case "endif", "endforeach", "endfunction", "endmacro", "endwhile":
			if depth > 0 {
				depth--
			}
		case "include":
			if len(c.args) > 0 {
				optional := len(c.args) > 1 && strings.EqualFold(c.args[1], "OPTIONAL")
				b.includeFile(c.args[0], optional, where, b.parseCmake)
			}
		case "set":
			if len(c.args) == 0 {
				continue
			}
			vals := c.args[1:]
			for i, v := range vals { // drop CACHE/PARENT_SCOPE tails
				if v == "CACHE" || v == "PARENT_SCOPE" {
					vals = vals[:i]
					break
				}
			}
			vals = b.spliceLists(vals)
			b.assign(c.args[0], "=", vals, where, depth > 0)
			if c.args[0] == "MICROPY_DEF_BOARD" {
				for _, v := range vals {
					b.addDefine(v, where, depth > 0)
				}
			}
		case "list":
			if len(c.args) >= 2 && strings.EqualFold(c.args[0], "APPEND") {
				b.assign(c.args[1], "+=", c.args[2:], where, depth > 0)
				if c.args[1] == "MICROPY_DEF_BOARD" {
					for _, v := range c.args[2:] {
						b.addDefine(v, where, depth > 0)
					}
				}
			}
		case "add_compile_definitions", "add_definitions":
			for _, v := range c.args {
				b.addDefine(strings.TrimPrefix(v, "-D"), where, depth > 0)
			}
		}
	}
}

// shellWords splits a command line as sh does: whitespace outside quotes separates
// words, quotes are removed ('…' literal, "…" with \" escapes).
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q == '\'' && c == '\'':
			q = 0
		case q == '"' && c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			i++
			cur.WriteByte(s[i])
		case q == '"' && c == '"':
			q = 0
		case q != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			q, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}

// expandMake substitutes $(VAR) with the variable's final value (make expands
// recursively-assigned CFLAGS when it compiles); unknown variables stay as they are.
func (b *buildVars) expandMake(s string) string {
	for i := 0; i < 8 && strings.Contains(s, "$("); i++ {
		out := mkRef.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := b.vars[m[2:len(m)-1]]; ok {
				return strings.Join(v, " ")
			}
			return m
		})
		if out == s {
			break
		}
		s = out
	}
	return s
}

var mkRef = regexp.MustCompile(`\$\([A-Za-z_]\w*\)`)

// spliceLists replaces an argument that is exactly ${VAR} by VAR's list, as CMake does
// for set(X ${X} more); other references stay for the consumer to expand.
func (b *buildVars) spliceLists(vals []string) []string {
	var out []string
	for _, v := range vals {
		if strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}") && strings.Count(v, "${") == 1 {
			if l, ok := b.vars[v[2:len(v)-1]]; ok {
				out = append(out, l...)
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

type cmakeCmd struct {
	name string
	args []string
	line int
}

// cmakeCommands splits CMake text into commands with their (unquoted) arguments.
func cmakeCommands(text string) []cmakeCmd {
	var out []cmakeCmd
	line := 1
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == '#':
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case isIdent(c):
			start := i
			for i < len(text) && isIdent(text[i]) {
				i++
			}
			name := text[start:i]
			cmdLine := line
			for i < len(text) && (text[i] == ' ' || text[i] == '\t') {
				i++
			}
			if i >= len(text) || text[i] != '(' {
				continue
			}
			i++
			var args []string
			depth := 1
			var cur strings.Builder
			inQ, legacy := false, false // legacy: quotes inside an unquoted arg are kept (a="b c")
			flush := func() {
				if cur.Len() > 0 {
					args = append(args, cur.String())
					cur.Reset()
				}
			}
			for i < len(text) && depth > 0 {
				ch := text[i]
				if ch == '\n' {
					line++
				}
				switch {
				case inQ && ch == '\\' && i+1 < len(text):
					cur.WriteByte(text[i+1])
					i++
				case ch == '"':
					switch {
					case inQ && legacy:
						cur.WriteByte(ch)
						inQ, legacy = false, false
					case inQ:
						inQ = false
						if cur.Len() == 0 {
							args = append(args, "")
						}
					case cur.Len() > 0:
						cur.WriteByte(ch)
						inQ, legacy = true, true
					default:
						inQ = true
					}
				case inQ:
					cur.WriteByte(ch)
				case ch == '#':
					for i < len(text) && text[i] != '\n' {
						i++
					}
					continue
				case ch == '(':
					depth++
					cur.WriteByte(ch)
				case ch == ')':
					depth--
					if depth > 0 {
						cur.WriteByte(ch)
					}
				case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
					flush()
				default:
					cur.WriteByte(ch)
				}
				i++
			}
			flush()
			out = append(out, cmakeCmd{name: name, args: args, line: cmdLine})
		default:
			i++
		}
	}
	return out
}
