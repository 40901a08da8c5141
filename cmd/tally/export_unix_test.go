//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The --out report is created 0644 less the umask, like any file a command writes, not
// 0600. The umask is pinned for the test (no test in this package runs in parallel).
func TestPartialFileMode(t *testing.T) {
	for _, umask := range []int{0o022, 0o027, 0o077} {
		old := syscall.Umask(umask)
		dir := t.TempDir()
		out := filepath.Join(dir, "nov.csv")
		f, err := newPartialFile(out)
		if err == nil {
			err = f.commit()
		}
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := st.Mode().Perm(), os.FileMode(0o644&^umask); got != want {
			t.Errorf("umask %03o: mode %03o, want %03o", umask, got, want)
		}
	}
}
