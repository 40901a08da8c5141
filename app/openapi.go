package app

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"gopkg.in/yaml.v3"
)

// openapiYAML is the contract of every route (DESIGN.md §3), written as YAML for people
// and served as JSON at GET /openapi.json. The app tests check it against the route
// table and validate every response they receive against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// openapiJSON is openapiYAML converted once, when the program starts: the document is
// part of the build, so a document that does not convert stops the binary at once, as
// a bad regexp.MustCompile would, instead of failing the first caller.
var openapiJSON = mustYAMLToJSON(openapiYAML)

// openapi: GET /openapi.json
func (a *App) openapi(c *gin.Context) { c.Data(http.StatusOK, "application/json", openapiJSON) }

func mustYAMLToJSON(src []byte) []byte {
	b, err := yamlToJSON(src)
	if err != nil {
		panic("app/openapi.yaml: " + err.Error())
	}
	return b
}

// yamlToJSON converts a YAML document to JSON, keeping the order of its members (paths
// read top to bottom as written). A duplicate key or a second document is an error, not
// a silent overwrite or omission.
func yamlToJSON(src []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc, more yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	switch err := dec.Decode(&more); {
	case err == nil:
		return nil, fmt.Errorf("line %d: want one YAML document, found a second", more.Line)
	case !errors.Is(err, io.EOF):
		return nil, err
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("want one YAML document, got %d", len(n.Content))
		}
		return writeJSON(b, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(b, n.Alias)
	case yaml.MappingNode:
		b.WriteByte('{')
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("line %d: keys must be plain scalars (no merge keys)", k.Line)
			}
			if seen[k.Value] {
				return fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			seen[k.Value] = true
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeScalar(b, k.Value); err != nil {
				return err
			}
			b.WriteByte(':')
			if err := writeJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, item := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, item); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float", "!!bool", "!!null":
			var v any
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: %w", n.Line, err)
			}
			return writeScalar(b, v)
		default: // !!str, and timestamps or binary, which stay the text written
			return writeScalar(b, n.Value)
		}
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

func writeScalar(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}
