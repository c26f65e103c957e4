package devicecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// goJargon matches decoder messages written for Go programmers ("cannot unmarshal array
// into Go value of type fschain.Export"): a person handed a wrong file learns nothing from
// them.
var goJargon = regexp.MustCompile(`\b[a-z]+\.[A-Z]\w+|Go value|Go struct|unmarshal|cbor:|json:|\*[a-z]+\.[a-z]`)

// BadInput says that the file at path is not what it should be, in words (see badInput).
func BadInput(path, what string, err error) error { return badInput(path, what, err) }

// badInput says that the file at path is not what it should be ("a device bundle"), with
// the decoder's reason when that reads as plain words.
func badInput(path, what string, err error) error {
	if reason := plainReason(err); reason != "" {
		return fmt.Errorf("%s is not %s: %s", path, what, reason)
	}
	return fmt.Errorf("%s is not %s", path, what)
}

// plainReason turns a decoding error into words, or "" when it has none to offer.
func plainReason(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return fmt.Sprintf("JSON %s where %s belongs", te.Value, jsonKind(te.Type))
		}
		return fmt.Sprintf("%q holds a JSON %s where %s belongs", te.Field, te.Value, jsonKind(te.Type))
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	msg := err.Error()
	// Keep the plain part before the first jargon: "malformed: cbor: cannot unmarshal …"
	// says "malformed".
	var keep []string
	for _, part := range strings.Split(msg, ": ") {
		if part == "json" || part == "cbor" { // a decoder's name: the words after it may be plain
			continue
		}
		if goJargon.MatchString(part) {
			break
		}
		keep = append(keep, part)
	}
	return strings.Join(keep, ": ")
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string"
		}
		return "a list"
	}
	return "an object"
}

// scrub is fail's last line of defence: an error message still carrying Go jargon is cut
// before it.
func scrub(err error) string {
	msg := err.Error()
	if !goJargon.MatchString(msg) {
		return msg
	}
	if plain := plainReason(err); plain != "" {
		return plain + " (unreadable input)"
	}
	return "unreadable input"
}
