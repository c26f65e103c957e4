package audit

import (
	"path/filepath"
	"regexp"
	"strings"
)

// detectChip finds the SoC: esp32 from IDF_TARGET (the board's or its per-chip common
// file's); rp2 from PICO_PLATFORM, else from the pico-sdk board header PICO_BOARD
// names (which defaults to the board's name in lower case, ports/rp2/CMakeLists.txt).
func (b *board) detectChip(hdr string) {
	switch b.port {
	case "esp32":
		if t, ok := b.bv.get("IDF_TARGET"); ok && t != "" {
			b.chip, b.chipWhere = strings.ToLower(t), b.bv.where["IDF_TARGET"]+" (IDF_TARGET "+t+")"
		} else if len(b.bv.opaque) > 0 {
			b.chip, b.chipWhere = "", "IDF_TARGET not found; "+b.bv.opaque[0]
		} else {
			b.chip, b.chipWhere = "esp32", "IDF_TARGET not set: ESP-IDF's default target esp32"
		}
		if _, ok := esp32Chips[b.chip]; !ok && b.chip != "" {
			b.chipWhere += ": a chip the audit does not model"
			b.chip = ""
		}
	case "rp2":
		b.chip, b.chipWhere = b.rp2Chip()
	}
}

func (b *board) rp2Chip() (string, string) {
	if plat, ok := b.bv.get("PICO_PLATFORM"); ok && plat != "" {
		w := b.bv.where["PICO_PLATFORM"] + " (PICO_PLATFORM " + plat + ")"
		return normRP2Platform(plat), w
	}
	if len(b.bv.opaque) > 0 {
		return "", "PICO_PLATFORM not found; " + b.bv.opaque[0]
	}
	board, ok := b.bv.get("PICO_BOARD")
	where := b.bv.where["PICO_BOARD"] + " (PICO_BOARD " + board + ")"
	if !ok || board == "" {
		board = strings.ToLower(b.name)
		where = "PICO_BOARD defaults to the board name in lower case, " + board + " (ports/rp2/CMakeLists.txt)"
	}
	// The pico-sdk reads PICO_PLATFORM from <PICO_BOARD>.h: first in
	// PICO_BOARD_HEADER_DIRS (the board's), then in its own boards.
	var dirs []string
	for _, d := range b.bv.vars["PICO_BOARD_HEADER_DIRS"] {
		if p, ok := b.expandBuildPath(d); ok {
			dirs = append(dirs, p)
		}
	}
	if b.mpyDir != "" {
		dirs = append(dirs, filepath.Join(b.mpyDir, "lib", "pico-sdk", "src", "boards", "include", "boards"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, board+".h")
		text, ok, err := readOpt(p)
		if err != nil || !ok {
			continue
		}
		if m := picoPlatformLine.FindStringSubmatch(text); m != nil {
			plat := m[1] + m[2]
			return normRP2Platform(plat), where + "; " + b.rel(p) + " sets PICO_PLATFORM " + plat
		}
		return "rp2040", where + "; " + b.rel(p) + " sets no PICO_PLATFORM: the pico-sdk default rp2040"
	}
	if plat, ok := picoSDKBoardPlatforms[board]; ok {
		return normRP2Platform(plat), where + "; pico-sdk 2.2.0 board " + board + ".h: PICO_PLATFORM " + plat
	}
	return "", where + ", which is neither in the board directory nor a pico-sdk board the audit knows"
}

var picoPlatformLine = regexp.MustCompile(`(?m)^[ \t]*(?:pico_board_cmake_set[ \t]*\([ \t]*PICO_PLATFORM[ \t]*,[ \t]*([\w-]+)|//[ \t]*pico_cmake_set[ \t]+PICO_PLATFORM[ \t]*=[ \t]*([\w-]+))`)

// normRP2Platform: "rp2350" means the pico-sdk's default rp2350-arm-s.
func normRP2Platform(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	if p == "rp2350" {
		return "rp2350-arm-s"
	}
	return p
}

// rp2EitherChip decides the checks of an rp2 board whose chip is unknown: a check
// whose answer is the same for RP2040 and RP2350 is that answer; one that differs
// stays unknown, saying why.
func rp2EitherChip(dir string, opt Options, b *board, checks []Check) ([]Check, error) {
	var per [][]Check
	for _, chip := range []string{"rp2040", "rp2350-arm-s"} {
		o, err := loadBoard(dir, opt, chip)
		if err != nil {
			return nil, err
		}
		per = append(per, o.checks())
	}
	out := make([]Check, len(checks))
	for i := range checks {
		a, c := per[0][i], per[1][i]
		out[i] = checks[i]
		if a.Status == c.Status && a.Status != Unknown {
			out[i].Status = a.Status
			out[i].Evidence = "chip unknown (" + b.chipWhere + "), same answer for RP2040 and RP2350: " + a.Evidence
		} else if a.Status != c.Status {
			out[i].Status = Unknown
			out[i].Evidence = "depends on the chip, which is unknown (" + b.chipWhere + "): RP2040 " + string(a.Status) + ", RP2350 " + string(c.Status)
		}
	}
	return out, nil
}
