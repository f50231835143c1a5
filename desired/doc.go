// Package desired reads, validates and defaults the desired state of the
// PostgreSQL clusters: the YAML files that operators commit to git.
//
// Loading is strict: unknown keys, wrong types and inconsistent references
// are all reported at once as FILE:LINE:COL: message. Nothing here does I/O
// beyond reading the files it is given.
package desired
