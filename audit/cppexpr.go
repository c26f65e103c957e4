package audit

import (
	"strconv"
	"strings"
)

// The integer-expression evaluator behind #if and macro values.

type token struct {
	kind byte // 'n' number, 'i' identifier, 's' string, 'o' operator
	text string
	num  int64
}

func tokenize(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && (isIdent(s[j])) {
				j++
			}
			lit := strings.TrimRight(strings.ToLower(s[i:j]), "ul")
			n, err := strconv.ParseInt(lit, 0, 64)
			if err != nil {
				toks = append(toks, token{kind: 'o', text: "?" + s[i:j]})
			} else {
				toks = append(toks, token{kind: 'n', num: n, text: s[i:j]})
			}
			i = j
		case isIdent(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			toks = append(toks, token{kind: 'i', text: s[i:j]})
			i = j
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				toks = append(toks, token{kind: 'o', text: "?unterminated string"})
				i = len(s)
				continue
			}
			toks = append(toks, token{kind: 's', text: s[i+1 : j]})
			i = j + 1
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "&&", "||", "==", "!=", ">=", "<=":
				toks = append(toks, token{kind: 'o', text: two})
				i += 2
				continue
			}
			toks = append(toks, token{kind: 'o', text: string(c)})
			i++
		}
	}
	return toks
}

func isIdent(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// exprParser evaluates C integer expressions: literals, macros, defined(), ! - ~,
// * / %, + -, comparisons, &&, ||, ?: and parentheses. ok=false means unknown.
type exprParser struct {
	toks    []token
	pos     int
	lookup  func(name string) (int64, string, bool)
	defined func(name string) (tri, string)
	why     string
	bad     bool
}

func (p *exprParser) parse() (int64, string, bool) {
	if len(p.toks) == 0 {
		return 0, "empty expression", false
	}
	v := p.ternary()
	if p.pos != len(p.toks) && !p.bad {
		p.fail("cannot parse expression")
	}
	if p.bad {
		return 0, p.why, false
	}
	return v, "", true
}

func (p *exprParser) fail(why string) {
	if !p.bad {
		p.bad, p.why = true, why
	}
}

func (p *exprParser) peek() string {
	if p.pos < len(p.toks) && p.toks[p.pos].kind == 'o' {
		return p.toks[p.pos].text
	}
	return ""
}

func (p *exprParser) ternary() int64 {
	c := p.binary(0)
	if p.peek() == "?" {
		p.pos++
		a := p.ternary()
		if p.peek() != ":" {
			p.fail("missing : in ?:")
			return 0
		}
		p.pos++
		b := p.ternary()
		if c != 0 {
			return a
		}
		return b
	}
	return c
}

var binPrec = map[string]int{"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
	"<": 7, ">": 7, "<=": 7, ">=": 7, "+": 8, "-": 8, "*": 9, "/": 9, "%": 9}

func (p *exprParser) binary(min int) int64 {
	l := p.unary()
	for !p.bad {
		op := p.peek()
		prec, ok := binPrec[op]
		if !ok || prec <= min {
			return l
		}
		p.pos++
		r := p.binary(prec)
		switch op {
		case "||":
			l = b2i(l != 0 || r != 0)
		case "&&":
			l = b2i(l != 0 && r != 0)
		case "|":
			l |= r
		case "^":
			l ^= r
		case "&":
			l &= r
		case "==":
			l = b2i(l == r)
		case "!=":
			l = b2i(l != r)
		case "<":
			l = b2i(l < r)
		case ">":
			l = b2i(l > r)
		case "<=":
			l = b2i(l <= r)
		case ">=":
			l = b2i(l >= r)
		case "+":
			l += r
		case "-":
			l -= r
		case "*":
			l *= r
		case "/", "%":
			if r == 0 {
				p.fail("division by zero")
				return 0
			}
			if op == "/" {
				l /= r
			} else {
				l %= r
			}
		}
	}
	return l
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (p *exprParser) unary() int64 {
	if p.bad {
		return 0
	}
	if p.pos >= len(p.toks) {
		p.fail("expression ends early")
		return 0
	}
	t := p.toks[p.pos]
	switch {
	case t.kind == 'o' && t.text == "!":
		p.pos++
		return b2i(p.unary() == 0)
	case t.kind == 'o' && t.text == "-":
		p.pos++
		return -p.unary()
	case t.kind == 'o' && t.text == "~":
		p.pos++
		return ^p.unary()
	case t.kind == 'o' && t.text == "(":
		p.pos++
		v := p.ternary()
		if p.peek() != ")" {
			p.fail("missing )")
			return 0
		}
		p.pos++
		return v
	case t.kind == 'n':
		p.pos++
		return t.num
	case t.kind == 'i' && t.text == "defined":
		p.pos++
		paren := p.peek() == "("
		if paren {
			p.pos++
		}
		if p.pos >= len(p.toks) || p.toks[p.pos].kind != 'i' {
			p.fail("defined without a name")
			return 0
		}
		name := p.toks[p.pos].text
		p.pos++
		if paren {
			if p.peek() != ")" {
				p.fail("missing ) after defined")
				return 0
			}
			p.pos++
		}
		v, why := p.defined(name)
		if v == triUnknown {
			p.fail(why)
			return 0
		}
		return b2i(v == triTrue)
	case t.kind == 'i':
		p.pos++
		if p.peek() == "(" {
			p.fail("function-like macro " + t.text + "() cannot be evaluated")
			return 0
		}
		v, why, ok := p.lookup(t.text)
		if !ok {
			p.fail(why)
			return 0
		}
		return v
	}
	p.fail("cannot evaluate " + t.text)
	return 0
}
