package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parse decodes the file into a Config. It first walks the parsed YAML tree alongside
// the Config type, which lets it expand ${NAME} in values, refuse unknown keys and
// mistyped values at their key paths, and report every problem at once — yaml.v3's own
// strict mode (Decoder.KnownFields) stops at line numbers, and its decoder would let
// `scale: 2.5` through as 2. Only a tree that passed the walk is decoded.
func parse(data []byte, getenv func(string) string) (Config, []Problem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, []Problem{{Message: "the file is empty"}}
		}
		return Config{}, []Problem{{Message: err.Error()}}
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return Config{}, []Problem{{Message: "the file must hold exactly one YAML document"}}
	}

	if len(doc.Content) == 0 {
		return Config{}, []Problem{{Message: "the file is empty"}}
	}
	w := walker{getenv: getenv}
	w.walk(doc.Content[0], reflect.TypeFor[Config](), "")
	if len(w.problems) > 0 {
		return Config{}, w.problems
	}
	var c Config
	if err := doc.Decode(&c); err != nil {
		// The walk should have caught anything the decoder refuses.
		return Config{}, []Problem{{Message: err.Error()}}
	}
	return c, nil
}

type walker struct {
	getenv   func(string) string
	problems []Problem
}

func (w *walker) add(path, format string, args ...any) {
	w.problems = append(w.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		w.add(path, "YAML anchors and aliases are not supported")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		switch {
		case t.Kind() == reflect.Pointer && credentialKey(path) != "":
			w.add(path, `has no value: remove the key to leave the source out, or give its %s (%s: "" accepts requests without auth)`,
				credentialKey(path), credentialKey(path))
		case t.Kind() == reflect.Pointer:
			w.add(path, "has no value: remove the key to leave it out, or write {} to enable it without settings")
		case t == reflect.TypeFor[Secret]() && (strings.HasSuffix(path, ".sources.gamezop_spp.bearer_token") ||
			strings.HasSuffix(path, ".sources.gamezop_scores.api_key")):
			// These credentials, left empty, turn their check off: that must be written,
			// not what a key with nothing after it means. (Elsewhere an empty secret is
			// refused by validation, or means none is set.)
			w.add(path, `has no value: give the secret, or write "" to accept requests without it`)
		case t.Kind() == reflect.Map:
			// A mapping whose entries were all commented out: absent and {} mean
			// different things (countries: absent is every country ×1, {} is none).
			w.add(path, "has no value: remove the key to take its default, or write {} for an empty mapping")
		}
		return // otherwise null is the same as absent
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		w.structure(n, t, path)
		w.requireCredential(n, path)
	case reflect.Map:
		child := func(key string) string { return path + "[" + strconv.Quote(key) + "]" }
		w.mapping(n, path, child, func(string) (reflect.Type, bool) { return t.Elem(), true })
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.add(path, "must be a list, got %s", kindName(n))
			return
		}
		for i, item := range n.Content {
			at := fmt.Sprintf("%s[%d]", path, i)
			if item.Kind == yaml.ScalarNode && item.ShortTag() == "!!null" {
				// The decoder drops it: a key with its value left out (a previous
				// credential commented out) would vanish without a word.
				w.add(at, "has no value: give it, or remove the item")
				continue
			}
			w.walk(item, t.Elem(), at)
		}
	default:
		w.scalar(n, t, path)
	}
}

// credentialKey is the key of the Gamezop source at path whose credential, empty,
// turns its check off; "" for any other path.
func credentialKey(path string) string {
	switch {
	case strings.HasSuffix(path, ".sources.gamezop_spp"):
		return "bearer_token"
	case strings.HasSuffix(path, ".sources.gamezop_scores"):
		return "api_key"
	}
	return ""
}

// requireCredential refuses a Gamezop source written without its credential key: the
// check is off only when written so (`bearer_token: ""`), never because a source was
// written as {} or its token line was deleted, which would credit anyone's requests.
func (w *walker) requireCredential(n *yaml.Node, path string) {
	key := credentialKey(path)
	if key == "" || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return
		}
	}
	w.add(path+"."+key, `is required: give the secret, or write %s: "" to accept requests without auth`, key)
}

func (w *walker) structure(n *yaml.Node, t reflect.Type, path string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	child := func(key string) string {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	w.mapping(n, path, child, func(key string) (reflect.Type, bool) {
		if ft, ok := fields[key]; ok {
			return ft, true
		}
		w.add(child(key), "unknown key (known keys here: %s)", strings.Join(names, ", "))
		return nil, false
	})
}

// mapping walks a YAML mapping whose keys are plain strings; field returns the type of
// the value at a key, or false when the key is not allowed (after reporting it).
func (w *walker) mapping(n *yaml.Node, path string, child func(string) string, field func(string) (reflect.Type, bool)) {
	if n.Kind != yaml.MappingNode {
		w.add(path, "must be a mapping of keys to values, got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Anchor != "" {
			w.add(path, "keys must be plain strings")
			continue
		}
		if seen[k.Value] {
			w.add(child(k.Value), "key appears twice")
			continue
		}
		seen[k.Value] = true
		if t, ok := field(k.Value); ok {
			w.walk(v, t, child(k.Value))
		}
	}
}

// decimalInteger is how an integer key's value is written.
var decimalInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

func (w *walker) scalar(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.ScalarNode {
		w.add(path, "must be a single value, got %s", kindName(n))
		return
	}
	isInt := t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64
	isBool := t.Kind() == reflect.Bool
	if n.ShortTag() == "!!binary" {
		w.add(path, "!!binary values are not supported")
		return
	}
	if strings.Contains(n.Value, "$") {
		v, ok := w.expand(n.Value, path)
		if !ok {
			return
		}
		if v != n.Value {
			n.Value = v
			n.Tag = "!!str"
			if _, err := strconv.ParseInt(v, 10, 64); err == nil && isInt && n.Style == 0 {
				n.Tag = "!!int"
			}
			if (v == "true" || v == "false") && isBool && n.Style == 0 {
				n.Tag = "!!bool"
			}
		}
	}
	// yaml.v3 would truncate a float into an integer field; only integers are accepted.
	if isInt && n.ShortTag() != "!!int" {
		w.add(path, "must be an integer, got %q", n.Value)
		return
	}
	// YAML reads 010 and 0o10 as octal (8) and 0x10 as hexadecimal, where a decimal key
	// reads "010" as ten: an integer is written in base 10 only.
	if isInt && !decimalInteger.MatchString(n.Value) {
		w.add(path, "must be an integer in base 10 without leading zeros (YAML reads 010 as octal 8), got %q", n.Value)
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if isInt {
			w.add(path, "must be an integer that fits %s, got %q", t.Kind(), n.Value)
		} else if isBool {
			w.add(path, "must be true or false")
		} else {
			w.add(path, "must be a plain string")
		}
	}
}

// expand replaces ${NAME} references in s, reporting malformed references and every
// unset variable at path. It never echoes s itself, which may be a secret.
func (w *walker) expand(s, path string) (string, bool) {
	var b strings.Builder
	ok := true
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				w.add(path, "unterminated ${ (write $${ for a literal ${)")
				return "", false
			}
			name := s[2:end]
			if !validEnvName(name) {
				w.add(path, "malformed ${...} reference: a name is letters, digits and _ (write $${ for a literal ${)")
				return "", false
			}
			v := w.getenv(name)
			if v == "" {
				w.add(path, "environment variable %s is not set or is empty (where an empty value is allowed, write \"\" instead of the reference)", name)
				ok = false
			}
			b.WriteString(v)
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	return b.String(), ok
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a single value"
	}
}
