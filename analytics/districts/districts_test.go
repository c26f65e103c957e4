package districts

import (
	"errors"
	"strings"
	"testing"
)

// A district's settings are operator input: what belongs to the members import or needs
// readings devices do not send is refused as an input error that says so.
func TestParseConfigRefusesWhatIsNotSettings(t *testing.T) {
	for raw, want := range map[string]string{
		`{"inlets":["bulk-1"]}`:                     "members import",
		`{"tanks":[{"level":"lv-1","area_m2":50}]}`: "tanks need level readings",
		`{"time_zone":"Mars/Olympus"}`:              "time_zone",
		`{"no_such_setting":1}`:                     "unknown field",
	} {
		_, err := ParseConfig("north", []byte(raw))
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an input error naming %q", raw, err, want)
		}
	}
	cfg, err := ParseConfig("north", []byte(`{"time_zone":"Europe/Lisbon"}`))
	if err != nil || cfg.Name != "north" || cfg.TimeZone != "Europe/Lisbon" {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := ParseConfig("north", nil); err != nil {
		t.Fatalf("empty settings: %v", err)
	}
}
