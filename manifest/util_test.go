package manifest_test

import (
	"sort"
	"strconv"

	"github.com/fieldseal/fieldseal/wire"
)

func itoa(i int) string { return strconv.Itoa(i) }

func sortFiles(f []wire.File) { sort.Slice(f, func(i, j int) bool { return f[i].Path < f[j].Path }) }
