package storetest_test

import (
	"testing"

	"tally/store"
	"tally/store/storetest"
)

// Dialects hands out its own slice each time: changing one changes no other test's.
func TestDialectsCannotBeChanged(t *testing.T) {
	d := storetest.Dialects()
	d[0] = "mysql"
	if got := storetest.Dialects(); len(got) != 2 || got[0] != store.SQLite || got[1] != store.Postgres {
		t.Fatalf("Dialects() = %v after a caller changed its copy", got)
	}
}
