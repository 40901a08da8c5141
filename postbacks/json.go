package postbacks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// decodeObject decodes body strictly into a tree of map[string]any, []any, string,
// json.Number, bool and nil. Strict where it matters for money and identity (DESIGN §3):
//
//   - invalid UTF-8 is refused rather than silently replaced with U+FFFD: two different
//     user ids must never collapse into one. A lone UTF-16 surrogate escape (what
//     JavaScript's JSON.stringify writes for a player's name cut inside an emoji) becomes
//     U+FFFD, as in encoding/json, and every string Tally reads refuses U+FFFD
//     (textProblem): such an id is a 400 naming its field, while a string Tally does not
//     read (a player's display name) is kept in the raw body and costs no event;
//   - exactly one value, an object, with nothing but whitespace after it;
//   - a duplicate key at any depth is refused, because providers' parsers disagree on
//     which copy wins and a signature covers both;
//   - NUL, raw or escaped, is refused: Postgres text cannot hold it, and failing later
//     with a 5xx would make the sender retry forever;
//   - numbers stay json.Number literals; nothing on this path ever becomes a float64.
//
// Keys are matched exactly by the callers (encoding/json's struct decoding would match
// "User-Id" to "user-id"), and unknown keys are kept and ignored, because providers add
// fields. Every problem is a *ValidationError on "body".
func decodeObject(body []byte) (map[string]any, error) {
	if !utf8.Valid(body) {
		return nil, bodyError("not valid UTF-8")
	}
	if obj, ok := scanObject(body); ok {
		return obj, nil
	}
	return decodeObjectSlowly(body)
}

// decodeObjectSlowly is decodeObject through encoding/json: the reference that
// scanObject must agree with (FuzzScanObject), and the path every refused body takes, so
// that its message is encoding/json's.
func decodeObjectSlowly(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, bodyError("empty body")
		}
		return nil, bodyError("not valid JSON: " + err.Error())
	}
	if rest := body[dec.InputOffset():]; len(bytes.TrimLeft(rest, jsonSpace)) != 0 {
		return nil, bodyError("trailing data after the JSON value")
	}
	raw = bytes.TrimLeft(raw, jsonSpace)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, bodyError("must be a JSON object")
	}
	if msg := checkEscapes(raw); msg != "" {
		return nil, bodyError(msg)
	}
	tree := json.NewDecoder(bytes.NewReader(raw))
	tree.UseNumber()
	v, err := readValue(tree, "")
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return nil, ve
		}
		return nil, bodyError("not valid JSON: " + err.Error())
	}
	return v.(map[string]any), nil
}

// checkEscapes finds the escape that encoding/json would accept but that does not denote
// a storable character: \u0000. b must be valid JSON, so every backslash is inside a
// string and starts a complete escape.
func checkEscapes(b []byte) string {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; skipping it keeps `\\u` from looking like an escape
		if b[i] != 'u' {
			continue
		}
		if hex4(b[i+1:i+5]) == 0 {
			return "NUL character in a string"
		}
		i += 4
	}
	return ""
}

// hex4 reads four hex digits that the JSON scanner has already validated.
func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return -1
	}
	return rune(n)
}

// readValue builds the tree from dec's tokens, refusing duplicate keys; path names the
// value in messages.
func readValue(dec *json.Decoder, path string) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		if t == '[' {
			arr := []any{}
			for dec.More() {
				v, err := readValue(dec, fmt.Sprintf("%s[%d]", path, len(arr)))
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			p := joinPath(path, key)
			if strings.IndexByte(key, 0) >= 0 {
				return nil, bodyError("NUL character in a key")
			}
			if _, dup := obj[key]; dup {
				return nil, bodyError(fmt.Sprintf("duplicate key %q", p))
			}
			v, err := readValue(dec, p)
			if err != nil {
				return nil, err
			}
			obj[key] = v
		}
		_, err := dec.Token() // '}'
		return obj, err
	case string:
		if strings.IndexByte(t, 0) >= 0 {
			return nil, bodyError("NUL character in a string")
		}
		return t, nil
	default: // json.Number, bool, nil
		return t, nil
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
