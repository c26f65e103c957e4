package wire

import (
	"errors"
	"reflect"
	"testing"
)

// Every entry type of fschain.md has a payload struct, and encode → decode is the identity.
func TestPayloadRegistry(t *testing.T) {
	for typ := uint16(1); typ <= EntryRepeat; typ++ {
		if EntryName(typ) == "unknown" {
			t.Fatalf("type %d has no name", typ)
		}
		v := NewPayload(typ)
		if v == nil {
			t.Fatalf("type %d (%s) has no payload struct", typ, EntryName(typ))
		}
		b, err := EncodePayload(typ, v)
		if err != nil {
			t.Fatalf("encode %s: %v", EntryName(typ), err)
		}
		got, err := DecodePayload(typ, b)
		if err != nil {
			t.Fatalf("decode %s: %v", EntryName(typ), err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Fatalf("%s: round trip %#v → %#v", EntryName(typ), v, got)
		}
	}
	if b, err := EncodePayload(EntryRegister, RegisterPayload{Litres: 5}); err != nil || len(b) == 0 {
		t.Fatalf("value (not pointer) payload: %v", err)
	}
	if _, err := EncodePayload(EntryRegister, &BootPayload{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("a boot payload under the register type: %v", err)
	}
	if _, err := EncodePayload(99, &BootPayload{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := DecodePayload(99, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown type decoded: %v", err)
	}
	if v, err := DecodePayload(0x8001, []byte{1, 2}); err != nil || len(v.([]byte)) != 2 {
		t.Fatal("application payload")
	}
	if _, err := DecodePayload(EntryRegister, []byte{0xa1, 0x09, 0x01}); err == nil {
		t.Fatal("unknown key accepted")
	}
	if v, err := DecodePayload(EntryCoverClose, nil); err != nil || v.(*EmptyPayload) == nil {
		t.Fatalf("empty payload: %v", err)
	}
}

func TestTopics(t *testing.T) {
	for _, tc := range []struct {
		root, up, down, filter string
	}{
		{"", "fieldseal/v1/m1/up", "fieldseal/v1/m1/down", "fieldseal/v1/+/up"},
		{"utility-a/meters", "utility-a/meters/m1/up", "utility-a/meters/m1/down", "utility-a/meters/+/up"},
		{"utility-b/", "utility-b/m1/up", "utility-b/m1/down", "utility-b/+/up"},
	} {
		tp := Topics{Root: tc.root}
		if tp.Up("m1") != tc.up || tp.Down("m1") != tc.down || tp.UplinkFilter() != tc.filter {
			t.Fatalf("root %q: %s %s %s", tc.root, tp.Up("m1"), tp.Down("m1"), tp.UplinkFilter())
		}
		if dev, ok := tp.DeviceOfUp(tc.up); !ok || dev != "m1" {
			t.Fatalf("root %q: device of %s = %q %v", tc.root, tc.up, dev, ok)
		}
		if _, ok := tp.DeviceOfUp(tc.down); ok {
			t.Fatalf("root %q: a downlink topic read as an uplink", tc.root)
		}
	}
	if _, ok := (Topics{Root: "a"}).DeviceOfUp("b/m1/up"); ok {
		t.Fatal("another fleet's topic accepted")
	}
	if _, ok := DefaultTopics.DeviceOfUp("fieldseal/v1/a/b/up"); ok {
		t.Fatal("a nested level read as a device id")
	}
	if got := DefaultTopics.SharedUplinkFilter("g"); got != "$share/g/fieldseal/v1/+/up" {
		t.Fatal(got)
	}
	// ValidTopicRoot: TestTopicRootVectors (the rule the guard shares)
}

func TestErrorName(t *testing.T) {
	if ErrorName(nil) != "" || ErrorName(errors.New("x")) != "" {
		t.Fatal("name for a foreign error")
	}
	if got := ErrorName(errors.Join(ErrMalformed, ErrOversize)); got != "oversize" {
		t.Fatalf("specific before general: %q", got)
	}
	if got := ErrorName(ErrDowngrade); got != "downgrade" {
		t.Fatal(got)
	}
}
