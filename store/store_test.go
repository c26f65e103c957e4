package store

import (
	"reflect"
	"testing"
	"time"
)

// Every field of Device but ID has its bit, in declaration order, and Diff sees a change
// of each: a field added to Device without a bit (or a Diff case) would fail here instead
// of being silently left unwritten by updates that carry Change.Was.
func TestDiffCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[Device]()
	if typ.NumField() != NumDeviceFields+1 || typ.Field(0).Name != "ID" {
		t.Fatalf("Device has %d fields (first %s), DeviceFields knows ID + %d", typ.NumField(), typ.Field(0).Name, NumDeviceFields)
	}
	names := []string{"Product", "Epoch", "Version", "UplinkKey", "DownlinkKey", "State", "StateSince", "StateReason", "PinnedVersion",
		"RunningVersion", "AnchorN", "AnchorHead", "AnchorKey", "Receipt", "LastRSeq", "LastReportHash", "LastAck", "Nonce", "PrevNonce",
		"LastSeen", "LastDeviceTime", "LastBoot", "ReportInterval", "Rejections", "WindowUntil", "Created", "DevEUI"}
	base := &Device{ID: "m-1", Product: "p", Epoch: 1, Version: 3, UplinkKey: []byte{1}, DownlinkKey: []byte{2}, State: StateTrusted,
		StateSince: time.Unix(100, 0), AnchorHead: []byte{3}, AnchorKey: []byte{4}, Receipt: []byte{5}, Created: time.Unix(50, 0)}
	if f := base.Diff(base.Clone()); f != 0 {
		t.Fatalf("a clone differs in %b", f)
	}
	for i := 1; i < typ.NumField(); i++ {
		if typ.Field(i).Name != names[i-1] {
			t.Fatalf("field %d is %s, bit %d stands for %s", i, typ.Field(i).Name, i-1, names[i-1])
		}
		d := base.Clone()
		v := reflect.ValueOf(d).Elem().Field(i)
		switch x := v.Addr().Interface().(type) {
		case *string:
			*x += "x"
		case *uint32:
			*x++
		case *uint64:
			*x++
		case *[]byte:
			*x = append(append([]byte(nil), *x...), 9)
		case *time.Time:
			*x = x.Add(time.Microsecond)
		default:
			t.Fatalf("field %s: type %s not handled by Diff's test", typ.Field(i).Name, v.Type())
		}
		if got, want := d.Diff(base), DeviceFields(1)<<(i-1); got != want {
			t.Errorf("changing %s: Diff %b, want %b", typ.Field(i).Name, got, want)
		}
	}
}

func TestDiffNilEmptyAndTimes(t *testing.T) {
	a := &Device{ID: "m-1", LastSeen: time.Unix(10, 5)}
	b := a.Clone()
	b.LastAck = []byte{}
	b.LastSeen = time.Unix(10, 5).In(time.FixedZone("x", 3600))
	if got := b.Diff(a); got != FieldLastAck {
		t.Fatalf("Diff %b, want only FieldLastAck (nil → empty; same instant in another zone is no change)", got)
	}
}

func TestWriteFields(t *testing.T) {
	was := &Device{ID: "m-1", Epoch: 2, Version: 7, AnchorN: 1}
	d := was.Clone()
	d.AnchorN = 2
	if got := (&Change{Device: d}).WriteFields(); got != AllDeviceFields {
		t.Fatalf("no Was: %b", got)
	}
	if got := (&Change{Device: d, Was: was}).WriteFields(); got != FieldAnchorN|FieldVersion {
		t.Fatalf("with Was: %b", got)
	}
	for _, bad := range []func(w *Device){
		func(w *Device) { w.ID = "m-2" },
		func(w *Device) { w.Version = 6 },
		func(w *Device) { w.Epoch = 1 },
	} {
		w := was.Clone()
		bad(w)
		if got := (&Change{Device: d, Was: w}).WriteFields(); got != AllDeviceFields {
			t.Fatalf("Was of another row: %b, want every field", got)
		}
	}
}
