package audit

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The frozen manifest (manifest.py) is Python, but board manifests are almost always a
// flat list of calls: include(), freeze(), module(), package(), require(). The audit
// reads exactly that. Any other statement, or an include/freeze it cannot resolve, is
// recorded as unresolved so that negative findings ("the guard is not frozen", "WebREPL
// is not frozen") become unknown instead of passing.

// mfVal is a literal argument: a string, a tuple/list of strings, None or a number.
type mfVal struct {
	s      string
	list   []string
	isList bool
	none   bool
}

// mfCall is one call statement in a manifest file.
type mfCall struct {
	name  string
	args  []mfVal
	kw    map[string]mfVal
	where string // file:line
	line  int
}

// parseManifest returns the calls in text and the statements it could not read.
func parseManifest(file, text string) (calls []mfCall, unparsed []string) {
	toks, err := pyTokens(text)
	if err != nil {
		return nil, []string{file + ":" + err.Error()}
	}
	i := 0
	for i < len(toks) {
		t := toks[i]
		if t.kind == 'N' { // newline
			i++
			continue
		}
		where := fmt.Sprintf("%s:%d", file, t.line)
		// one statement runs to the next top-level newline
		j := i
		for j < len(toks) && toks[j].kind != 'N' {
			j++
		}
		stmt := toks[i:j]
		i = j
		if stmt[0].indent {
			unparsed = append(unparsed, where+": indented statement inside a block the audit does not evaluate")
			continue
		}
		c, ok := parseCall(stmt)
		if !ok {
			unparsed = append(unparsed, where+": statement not understood by the audit")
			continue
		}
		c.where, c.line = where, t.line
		calls = append(calls, c)
	}
	return calls, unparsed
}

type pyTok struct {
	kind   byte // 'I' ident, 'S' string, 'P' punct, 'U' number, 'N' newline
	text   string
	line   int
	indent bool // first token of its physical line, and that line is indented
}

// pyTokens tokenises the manifest subset; newlines inside brackets are dropped, as in
// Python, so multi-line calls form one statement.
func pyTokens(s string) ([]pyTok, error) {
	var out []pyTok
	line, depth := 1, 0
	lineStart, indented := true, false
	for i := 0; i < len(s); {
		c := s[i]
		if lineStart && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '#' {
			if indented && depth == 0 {
				out = append(out, pyTok{kind: 'P', text: "<indent>", line: line, indent: true})
			}
			lineStart = false
		}
		if c == '\n' {
			lineStart, indented = true, false
		} else if lineStart && (c == ' ' || c == '\t') {
			indented = true
		}
		switch {
		case c == '\n':
			if depth == 0 {
				out = append(out, pyTok{kind: 'N', line: line})
			}
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			line++
			i += 2
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			q := c
			if strings.HasPrefix(s[i:], strings.Repeat(string(q), 3)) {
				return nil, fmt.Errorf("%d: triple-quoted strings are not supported", line)
			}
			j := i + 1
			var b strings.Builder
			for j < len(s) && s[j] != q {
				if s[j] == '\n' {
					return nil, fmt.Errorf("%d: unterminated string", line)
				}
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%d: unterminated string", line)
			}
			out = append(out, pyTok{kind: 'S', text: b.String(), line: line})
			i = j + 1
		case isIdent(c):
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] == '.') {
				j++
			}
			// string prefixes such as r"..." / f"...": f-strings are not literals
			if j < len(s) && (s[j] == '"' || s[j] == '\'') {
				p := strings.ToLower(s[i:j])
				if p == "r" || p == "u" {
					i = j
					continue
				}
			}
			kind := byte('I')
			if c >= '0' && c <= '9' {
				kind = 'U'
			}
			out = append(out, pyTok{kind: kind, text: s[i:j], line: line})
			i = j
		default:
			switch c {
			case '(', '[', '{':
				depth++
			case ')', ']', '}':
				depth--
				if depth < 0 {
					return nil, fmt.Errorf("%d: unbalanced %q", line, c)
				}
			}
			out = append(out, pyTok{kind: 'P', text: string(c), line: line})
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%d: unclosed bracket at end of file", line)
	}
	return out, nil
}

// parseCall accepts NAME ( arg, ..., kw=arg ) with literal arguments only.
func parseCall(t []pyTok) (mfCall, bool) {
	if len(t) < 3 || t[0].kind != 'I' || t[1].text != "(" || t[len(t)-1].text != ")" {
		return mfCall{}, false
	}
	c := mfCall{name: t[0].text, kw: map[string]mfVal{}}
	body := t[2 : len(t)-1]
	for len(body) > 0 {
		key := ""
		if len(body) >= 2 && body[0].kind == 'I' && body[1].text == "=" {
			key = body[0].text
			body = body[2:]
		}
		v, n, ok := parseVal(body)
		if !ok {
			return mfCall{}, false
		}
		body = body[n:]
		if key != "" {
			c.kw[key] = v
		} else {
			if len(c.kw) > 0 {
				return mfCall{}, false
			}
			c.args = append(c.args, v)
		}
		if len(body) > 0 {
			if body[0].text != "," {
				return mfCall{}, false
			}
			body = body[1:]
		}
	}
	return c, true
}

func parseVal(t []pyTok) (mfVal, int, bool) {
	if len(t) == 0 {
		return mfVal{}, 0, false
	}
	switch {
	case t[0].kind == 'S':
		// adjacent literals concatenate
		s, n := t[0].text, 1
		for n < len(t) && t[n].kind == 'S' {
			s += t[n].text
			n++
		}
		return mfVal{s: s}, n, true
	case t[0].kind == 'U':
		return mfVal{s: t[0].text}, 1, true
	case t[0].kind == 'I' && (t[0].text == "None" || t[0].text == "True" || t[0].text == "False"):
		return mfVal{s: t[0].text, none: t[0].text == "None"}, 1, true
	case t[0].text == "(" || t[0].text == "[":
		closer := ")"
		if t[0].text == "[" {
			closer = "]"
		}
		v := mfVal{isList: true}
		n := 1
		for n < len(t) && t[n].text != closer {
			if t[n].kind != 'S' {
				return mfVal{}, 0, false
			}
			v.list = append(v.list, t[n].text)
			n++
			if n < len(t) && t[n].text == "," {
				n++
			}
		}
		if n >= len(t) {
			return mfVal{}, 0, false
		}
		return v, n + 1, true
	}
	return mfVal{}, 0, false
}

// frozenItem is one module or file the manifest freezes.
type frozenItem struct {
	name  string // frozen path as import sees it, e.g. "_boot.py", "fieldseal/boot.py"
	src   string // file on disk, "" when not known (modelled port manifest)
	where string // manifest file:line that froze it
	stock bool   // from a modelled MicroPython port manifest
}

// manifestSet is a resolved frozen manifest.
type manifestSet struct {
	root       string
	files      []string // manifest files read
	frozen     []frozenItem
	packages   map[string]string // package("name") -> where
	requires   map[string]string // require("name") -> where
	unresolved []string          // file:line reasons: includes/freezes not followed, statements not understood
}

// manifestEnv carries the $(VAR) values and the port whose manifest is modelled.
type manifestEnv struct {
	vars map[string]string // PORT_DIR, BOARD_DIR, MPY_DIR, MPY_LIB_DIR: "" if unknown
	port string
	rel  func(path string) string // for evidence: path relative to the board dir
}

func loadManifest(path string, env manifestEnv) *manifestSet {
	ms := &manifestSet{root: path, packages: map[string]string{}, requires: map[string]string{}}
	ms.include(path, env, "", 0, map[string]bool{})
	return ms
}

func (ms *manifestSet) include(path string, env manifestEnv, from string, depth int, seen map[string]bool) {
	if depth > 16 {
		ms.unresolved = append(ms.unresolved, from+": include nesting deeper than 16")
		return
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "manifest.py")
	}
	abs, _ := filepath.Abs(path)
	if seen[abs] {
		ms.unresolved = append(ms.unresolved, from+": include cycle through "+env.rel(path))
		return
	}
	seen[abs] = true
	defer delete(seen, abs)
	data, err := os.ReadFile(path)
	if err != nil {
		if from == "" {
			ms.unresolved = append(ms.unresolved, env.rel(path)+": cannot read manifest")
		} else {
			ms.unresolved = append(ms.unresolved, from+": include "+env.rel(path)+" cannot be read")
		}
		return
	}
	file := env.rel(path)
	ms.files = append(ms.files, file)
	calls, unparsed := parseManifest(file, string(data))
	ms.unresolved = append(ms.unresolved, unparsed...)
	dir := filepath.Dir(path)
	for _, c := range calls {
		ms.apply(c, dir, env, depth, seen)
	}
}

// expand substitutes $(VAR) and makes relative paths relative to the manifest's dir.
func (env manifestEnv) expand(p, dir string) (string, string, bool) {
	out := p
	for {
		i := strings.Index(out, "$(")
		if i < 0 {
			break
		}
		j := strings.Index(out[i:], ")")
		if j < 0 {
			return "", "unterminated $( in " + p, false
		}
		name := out[i+2 : i+j]
		val, ok := env.vars[name]
		if !ok || val == "" {
			return "", "$(" + name + ") cannot be resolved from the board directory", false
		}
		out = out[:i] + val + out[i+j+1:]
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(dir, out)
	}
	return filepath.Clean(out), "", true
}

func (ms *manifestSet) apply(c mfCall, dir string, env manifestEnv, depth int, seen map[string]bool) {
	str := func(i int, key string) (string, bool) {
		if i < len(c.args) && !c.args[i].isList && !c.args[i].none {
			return c.args[i].s, true
		}
		if v, ok := c.kw[key]; ok && !v.isList && !v.none {
			return v.s, true
		}
		return "", false
	}
	switch c.name {
	case "include":
		p, ok := str(0, "manifest_path")
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": include() without a path")
			return
		}
		full, why, ok := env.expand(p, dir)
		if ok {
			if _, err := os.Stat(full); err == nil {
				ms.include(full, env, c.where, depth+1, seen)
				return
			}
		}
		if m := modelledPortManifest(env.port, p); m != nil {
			for _, it := range m.frozen {
				it.where = c.where + " → " + m.source
				it.stock = true
				ms.frozen = append(ms.frozen, it)
			}
			for _, r := range m.requires {
				ms.requires[r] = c.where + " → " + m.source
			}
			return
		}
		if why == "" {
			why = p + " does not exist"
		}
		ms.unresolved = append(ms.unresolved, c.where+": include("+quote(p)+") not resolved: "+why)
	case "require":
		name, ok := str(0, "name")
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": require() without a name")
			return
		}
		ms.requires[name] = c.where
	case "package":
		name, ok := str(0, "package_path")
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": package() without a name")
			return
		}
		ms.packages[name] = c.where
		base := "."
		if b, ok := str(2, "base_path"); ok {
			base = b
		}
		bdir, why, ok := env.expand(base, dir)
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": package "+quote(name)+" base_path not resolved: "+why)
			return
		}
		// A package directory that cannot be listed only hides the package's own
		// files (all under name/), never a boot file or WebREPL: not a reason for unknown.
		if st, err := os.Stat(filepath.Join(bdir, name)); err == nil && st.IsDir() {
			ms.freezeDir(filepath.Join(bdir, name), name+"/", c.where)
		}
	case "module":
		name, ok := str(0, "module_path")
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": module() without a path")
			return
		}
		base := "."
		if b, ok := str(1, "base_path"); ok {
			base = b
		}
		// The frozen name is known even when base_path is not; only the module's own
		// source is then unreadable (checks that need it report unknown themselves).
		bdir, _, ok := env.expand(base, dir)
		src := ""
		if ok {
			src = filepath.Join(bdir, name)
		}
		ms.frozen = append(ms.frozen, frozenItem{name: filepath.ToSlash(name), src: src, where: c.where})
	case "freeze", "freeze_as_str", "freeze_as_mpy", "freeze_mpy":
		p, ok := str(0, "path")
		if !ok {
			ms.unresolved = append(ms.unresolved, c.where+": "+c.name+"() without a path")
			return
		}
		full, why, ok := env.expand(p, dir)
		var script mfVal
		if len(c.args) > 1 {
			script = c.args[1]
		} else if v, has := c.kw["script"]; has {
			script = v
		} else {
			script = mfVal{none: true}
		}
		switch {
		case script.isList:
			for _, s := range script.list {
				ms.frozen = append(ms.frozen, frozenItem{name: s, src: joinIf(ok, full, s), where: c.where})
			}
		case !script.none:
			ms.frozen = append(ms.frozen, frozenItem{name: script.s, src: joinIf(ok, full, script.s), where: c.where})
		default:
			if !ok {
				if m := modelledPortModules(env.port, p); m != nil {
					for _, it := range m.frozen {
						it.where = c.where + " → " + m.source
						it.stock = true
						ms.frozen = append(ms.frozen, it)
					}
					return
				}
				ms.unresolved = append(ms.unresolved, c.where+": freeze("+quote(p)+") not resolved: "+why)
				return
			}
			ms.freezeDir(full, "", c.where)
		}
		// with explicit script names the frozen names are known even if the path is not
	case "metadata", "add_library", "options":
		// no effect on what the audit checks
	default:
		ms.unresolved = append(ms.unresolved, c.where+": "+c.name+"() is not a manifest function the audit knows")
	}
}

func joinIf(ok bool, dir, name string) string {
	if !ok {
		return ""
	}
	return filepath.Join(dir, name)
}

func (ms *manifestSet) freezeDir(dir, prefix, where string) {
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		ms.unresolved = append(ms.unresolved, where+": directory "+filepath.Base(dir)+" to freeze cannot be listed")
		return
	}
	var names []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, ".py") || strings.HasSuffix(p, ".mpy") {
			r, _ := filepath.Rel(dir, p)
			names = append(names, r)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		ms.frozen = append(ms.frozen, frozenItem{name: prefix + filepath.ToSlash(n), src: filepath.Join(dir, n), where: where})
	}
}

// find returns the frozen items whose frozen name is name.
func (ms *manifestSet) find(name string) []frozenItem {
	var out []frozenItem
	for _, it := range ms.frozen {
		if it.name == name || strings.TrimSuffix(it.name, ".py") == strings.TrimSuffix(name, ".py") {
			out = append(out, it)
		}
	}
	return out
}

func quote(s string) string { return "\"" + s + "\"" }
