package httpapi_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// The members CSV is operator input: any bytes give either members that are all valid
// (device id, non-empty district, known role) or an ErrInput error, never a panic.
func FuzzParseMembersCSV(f *testing.F) {
	f.Add([]byte("device,district,role\nm-1,north,customer\nbulk-1,north,inlet\nbulk-2,north,outlet\nm-9,north,remove\n"))
	f.Add([]byte("device,district,role\n\"m-1\",\"north\",\"customer\"\n"))
	f.Add([]byte("device,district,role\nm-1,north\n"))
	f.Add([]byte("device,district,role\nbad id,north,customer\n"))
	f.Add([]byte("device,district\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, remove, err := httpapi.ParseMembersCSV(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, server.ErrInput) {
				t.Fatalf("error %v is not an input error", err)
			}
			if set != nil || remove != nil {
				t.Fatal("an error came with members")
			}
			return
		}
		for _, m := range append(set, remove...) {
			if !wire.ValidDeviceID(m.Dev) || m.District == "" {
				t.Fatalf("accepted %+v", m)
			}
		}
		for _, m := range set {
			if store.CheckRole(m.Role) != nil {
				t.Fatalf("accepted role %q", m.Role)
			}
		}
		for _, m := range remove {
			if m.Role != "remove" {
				t.Fatalf("remove list holds %+v", m)
			}
		}
	})
}
