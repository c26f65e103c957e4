package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fieldseal/fieldseal/internal/atomicfile"
	"github.com/fieldseal/fieldseal/wire"
)

// CheckAppDir says, before anything is logged or reported, whether the application folder
// can be checked at all: a typo in --dir is the operator's mistake, not tamper (an
// unreadable tree would otherwise be logged as a check-fail).
func CheckAppDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--dir %s: no such folder: give the application folder the manifest seals (nothing was logged or reported)", dir)
	case err != nil:
		return fmt.Errorf("--dir %s: %w (nothing was logged or reported)", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("--dir %s: not a folder: give the application folder the manifest seals (nothing was logged or reported)", dir)
	}
	if _, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("--dir %s: cannot list it (%v): run the agent as a user that can read the application (nothing was logged or reported)", dir, err)
	}
	return nil
}

func checkAppDir(dir string) error { return CheckAppDir(dir) }

// takeBundle returns the bundle the agent works with: its own copy in the data folder,
// made from the given bundle at first start. The given file is never written: it is often
// the operator's only copy, and the one an auditor's K_1 comes from.
func takeBundle(cfg RunConfig) (*wire.Bundle, error) {
	given := cfg.Bundle
	p := filepath.Join(cfg.DataDir, ownBundle)
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		c := *given
		enc, err := json.MarshalIndent(&c, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(p, append(enc, '\n'), 0o600); err != nil {
			return nil, fmt.Errorf("taking the bundle into %s: %w", cfg.DataDir, err)
		}
		return &c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the agent's bundle copy %s: %w", p, err)
	}
	var own wire.Bundle
	if err := json.Unmarshal(raw, &own); err != nil {
		return nil, fmt.Errorf("the agent's bundle copy %s: %w", p, err)
	}
	if err := own.Check(); err != nil {
		return nil, fmt.Errorf("the agent's bundle copy %s: %w", p, err)
	}
	if own.Device != given.Device || own.Epoch != given.Epoch {
		return nil, fmt.Errorf("data folder %s belongs to %s epoch %d, the bundle is %s epoch %d: give this device's data folder with --data (to re-provision, move the old folder away first)",
			cfg.DataDir, own.Device, own.Epoch, given.Device, given.Epoch)
	}
	if !bytes.Equal(own.UplinkKey, given.UplinkKey) || !bytes.Equal(own.DownlinkKey, given.DownlinkKey) {
		return nil, fmt.Errorf("the bundle's keys differ from those the agent took into %s at its first start: give the bundle this device was provisioned with", cfg.DataDir)
	}
	// Where to report may change; the secrets stay those taken at first start.
	own.MQTT, own.HTTP, own.TopicRoot, own.ServerPub = given.MQTT, given.HTTP, given.TopicRoot, given.ServerPub
	return &own, nil
}

// osUptime reads the Linux boot id and the monotonic time since boot (CLOCK_BOOTTIME, as
// /proc/uptime shows it), which the renter cannot set back without a reboot. Elsewhere it
// returns an empty id: windows then end at the agent's next start.
func osUptime() (string, uint64) {
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", 0
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "", 0
	}
	f := strings.Fields(string(up))
	if len(f) == 0 {
		return "", 0
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", 0
	}
	return strings.TrimSpace(string(id)), uint64(secs)
}
