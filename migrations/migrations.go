// Package migrations embeds the numbered SQL migrations, one directory per dialect, that
// goose applies at startup and in `tally migrate`.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// FS returns the migrations of one dialect ("postgres" or "sqlite").
func FS(dialect string) (fs.FS, error) { return fs.Sub(files, dialect) }
