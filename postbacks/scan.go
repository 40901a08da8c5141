package postbacks

import (
	"encoding/json"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanObject is decodeObject's fast path: one pass over a body already known to be valid
// UTF-8, building the same tree decodeObjectSlowly builds through encoding/json's
// decoder and tokens (which cost a tenth of a receiver's CPU under load). It accepts
// only what decodeObjectSlowly accepts, and yields the same tree (FuzzScanObject holds
// it to both); on anything it does not accept it says no, and decodeObject takes the
// slow path, which refuses the body with encoding/json's message (or, were the two ever
// to disagree on a good body, accepts it).
func scanObject(b []byte) (map[string]any, bool) {
	s := scanner{b: b}
	s.space()
	if s.i >= len(b) || b[s.i] != '{' {
		return nil, false
	}
	v, ok := s.value(0)
	if !ok {
		return nil, false
	}
	s.space()
	if s.i != len(b) {
		return nil, false
	}
	return v.(map[string]any), true
}

type scanner struct {
	b []byte
	i int
}

// scanMaxDepth bounds nesting; deeper bodies go the slow way (encoding/json allows 10,000
// levels).
const scanMaxDepth = 100

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// value reads one JSON value at s.i, leading whitespace already skipped.
func (s *scanner) value(depth int) (any, bool) {
	if s.i >= len(s.b) || depth > scanMaxDepth {
		return nil, false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth)
	case c == '[':
		return s.array(depth)
	case c == '"':
		str, ok := s.str()
		if !ok {
			return nil, false
		}
		return str, true
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	}
	return nil, false
}

func (s *scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

func (s *scanner) object(depth int) (any, bool) {
	s.i++ // '{'
	obj := map[string]any{}
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return obj, true
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, false
		}
		key, ok := s.str()
		if !ok {
			return nil, false
		}
		if _, dup := obj[key]; dup {
			return nil, false
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, false
		}
		s.i++
		s.space()
		v, ok := s.value(depth + 1)
		if !ok {
			return nil, false
		}
		obj[key] = v
		if more, ok := s.more('}'); !ok || !more {
			return obj, ok
		}
	}
}

func (s *scanner) array(depth int) (any, bool) {
	s.i++ // '['
	arr := []any{}
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return arr, true
	}
	for {
		v, ok := s.value(depth + 1)
		if !ok {
			return nil, false
		}
		arr = append(arr, v)
		if more, ok := s.more(']'); !ok || !more {
			return arr, ok
		}
	}
}

// more reads what follows an object's member or an array's element: a comma and the
// whitespace after it (more to come), or end, the closing bracket.
func (s *scanner) more(end byte) (more, ok bool) {
	s.space()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.space()
		return true, true
	case end:
		s.i++
		return false, true
	}
	return false, false
}

// number reads a number as its literal, in JSON's grammar:
// -? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?
func (s *scanner) number() (any, bool) {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return nil, false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return nil, false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return nil, false
		}
	}
	return json.Number(s.b[start:s.i]), true
}

// digits reads one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// str reads a string. It refuses what decodeObject refuses in one: a control character
// and NUL however written. A \u escape of a lone UTF-16 surrogate is U+FFFD, as in
// encoding/json.
func (s *scanner) str() (string, bool) {
	s.i++ // '"'
	start := s.i
	for s.i < len(s.b) { // the common case: no escape
		c := s.b[s.i]
		if c == '"' {
			str := string(s.b[start:s.i])
			s.i++
			return str, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		s.i++
	}
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		s.i++ // '\\'
		if s.i >= len(s.b) {
			return "", false
		}
		e := s.b[s.i]
		s.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok || r == 0 {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A pair when an escaped low surrogate follows a high one; otherwise the
				// surrogate alone is U+FFFD and what follows is read on its own, as
				// encoding/json does.
				hi := r
				r = unicode.ReplacementChar
				if len(s.b)-s.i >= 6 && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					at := s.i
					s.i += 2
					lo, ok := s.hex4()
					if pair := utf16.DecodeRune(hi, lo); ok && pair != unicode.ReplacementChar {
						r = pair
					} else {
						s.i = at
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", false
		}
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape.
func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}
