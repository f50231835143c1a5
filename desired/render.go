package desired

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Render writes s as YAML: every field, defaults included, in the order of
// the types, with map keys sorted. The output is deterministic and Load
// reads it back to an equal State. It is what `reconciler validate
// --show-defaults` prints.
func Render(w io.Writer, s *State) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("desired: render: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("desired: render: %w", err)
	}
	return nil
}
