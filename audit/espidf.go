package audit

import (
	"fmt"
	"strconv"
	"strings"
)

// sdkconfig holds the merged ESP-IDF options from the board's fragments, later
// fragments winning as in ESP-IDF's SDKCONFIG_DEFAULTS.
type sdkconfig struct {
	vals     map[string]string // CONFIG_X -> "y", "n", number or unquoted string
	where    map[string]string
	problems []string // lines that could not be parsed, unread fragments
	files    []string
}

func newSdkconfig() *sdkconfig {
	return &sdkconfig{vals: map[string]string{}, where: map[string]string{}}
}

// parse merges one fragment. Accepted lines: blank, comments, "# CONFIG_X is not set",
// CONFIG_X=value. Anything else is garbage and makes sdkconfig-based checks unknown.
func (sc *sdkconfig) parse(file, text string) {
	sc.files = append(sc.files, file)
	for i, raw := range strings.Split(text, "\n") {
		where := fmt.Sprintf("%s:%d", file, i+1)
		s := strings.TrimSpace(strings.TrimRight(raw, "\r"))
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "#") {
			body := strings.TrimSpace(s[1:])
			if strings.HasPrefix(body, "CONFIG_") && strings.HasSuffix(body, " is not set") {
				name := strings.TrimSpace(strings.TrimSuffix(body, " is not set"))
				if validConfigName(name) {
					sc.vals[name], sc.where[name] = "n", where
				}
			}
			continue
		}
		name, val, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || !validConfigName(name) {
			sc.problems = append(sc.problems, where+": cannot parse sdkconfig line")
			continue
		}
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, "\"") {
			u, err := strconv.Unquote(val)
			if err != nil {
				sc.problems = append(sc.problems, where+": bad string value for "+name)
				continue
			}
			val = u
		} else if strings.ContainsAny(val, " \t\"") {
			sc.problems = append(sc.problems, where+": bad value for "+name)
			continue
		}
		sc.vals[name], sc.where[name] = val, where
	}
}

func validConfigName(s string) bool {
	if !strings.HasPrefix(s, "CONFIG_") || len(s) == len("CONFIG_") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdent(s[i]) {
			return false
		}
	}
	return true
}

// partition is one row of an ESP-IDF partition table CSV.
type partition struct {
	name, typ, subtype, offset, size string
	flags                            []string
	where                            string
}

func (p partition) hasFlag(f string) bool {
	for _, x := range p.flags {
		if x == f {
			return true
		}
	}
	return false
}

// parsePartitions reads an ESP-IDF partition CSV. Any malformed row is an error: the
// audit then reports the partition checks as unknown rather than guessing.
func parsePartitions(file, text string) ([]partition, error) {
	var out []partition
	for i, raw := range strings.Split(text, "\n") {
		s := strings.TrimSpace(strings.TrimRight(raw, "\r"))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", file, i+1)
		f := strings.Split(s, ",")
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		for len(f) > 5 && f[len(f)-1] == "" {
			f = f[:len(f)-1]
		}
		if len(f) < 5 || len(f) > 6 {
			return nil, fmt.Errorf("%s: want 5 or 6 fields (name, type, subtype, offset, size[, flags]), got %d", where, len(f))
		}
		p := partition{name: f[0], typ: f[1], subtype: f[2], offset: f[3], size: f[4], where: where}
		if p.name == "" || len(p.name) > 16 {
			return nil, fmt.Errorf("%s: bad partition name %q", where, p.name)
		}
		switch p.typ {
		case "app", "data", "bootloader", "partition_table":
		default:
			if _, err := strconv.ParseUint(p.typ, 0, 8); err != nil {
				return nil, fmt.Errorf("%s: bad partition type %q", where, p.typ)
			}
		}
		if p.subtype == "" {
			return nil, fmt.Errorf("%s: empty subtype", where)
		}
		if p.offset != "" && !sizeLike(p.offset) {
			return nil, fmt.Errorf("%s: bad offset %q", where, p.offset)
		}
		if !sizeLike(p.size) {
			return nil, fmt.Errorf("%s: bad size %q", where, p.size)
		}
		if len(f) == 6 && f[5] != "" {
			for _, fl := range strings.Split(f[5], ":") {
				fl = strings.TrimSpace(fl)
				switch fl {
				case "encrypted", "readonly":
					p.flags = append(p.flags, fl)
				default:
					return nil, fmt.Errorf("%s: unknown flag %q", where, fl)
				}
			}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no partitions", file)
	}
	return out, nil
}

func sizeLike(s string) bool {
	s = strings.ToUpper(s)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "K"), "M")
	_, err := strconv.ParseUint(strings.ToLower(s), 0, 64)
	return err == nil
}
