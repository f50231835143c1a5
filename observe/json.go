package observe

import (
	"encoding/json"
	"fmt"
	"io"
)

// Read decodes an observation written by Write (or by `reconciler observe
// --output json`). Unknown fields and other schema versions are refused, so
// a plan is never computed from a file this version misreads.
func Read(r io.Reader) (*Observation, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var o Observation
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("read observation: %w", err)
	}
	if o.Version != SchemaVersion {
		return nil, fmt.Errorf("read observation: schema version %d, this reconciler reads version %d", o.Version, SchemaVersion)
	}
	return &o, nil
}

// Write encodes an observation as indented JSON, in its stable encoding.
func Write(w io.Writer, o *Observation) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}
