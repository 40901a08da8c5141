package postbacks

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fast path and encoding/json agree: whatever scanObject accepts, decodeObjectSlowly
// accepts with the same tree; whatever decodeObjectSlowly accepts (nested no deeper than
// scanObject goes), scanObject accepts too, so good bodies never take the slow path.
// Explore with `go test ./postbacks/ -run '^$' -fuzz FuzzScanObject -fuzztime 1m`.
func FuzzScanObject(f *testing.F) {
	for _, b := range scanSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return // decodeObject refuses it before either path
		}
		fast, ok := scanObject(body)
		slow, err := decodeObjectSlowly(body)
		if ok {
			if err != nil {
				t.Fatalf("the fast path accepts %q, encoding/json refuses it: %v", body, err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%q: fast path %#v, encoding/json %#v", body, fast, slow)
			}
		} else if err == nil && strings.Count(string(body), "[")+strings.Count(string(body), "{") <= scanMaxDepth {
			t.Fatalf("encoding/json accepts %q, the fast path does not", body)
		}
	})
}

// scanSeeds are the strict decoder's cases and every provider sample in testdata.
func scanSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, c := range decodeObjectCases {
		seeds = append(seeds, []byte(c.body))
	}
	for _, s := range []string{
		`{"a":"\"\\\/\b\f\n\r\t\u00e9\u20AC\uD83D\uDE00x"}`, `{"a":-0.5e+10,"b":0,"c":-0,"d":1E-2,"e":[],"f":{},"g":[[],[{}]]}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a" : [ 1 , 2 ] , "b" : { } }`, `{"a":[1,]}`, `{"a":[,1]}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a":"\uDBFF\uDFFF"}`,
		`{"a":"` + strings.Repeat("x", 300) + `\n"}`, strings.Repeat(`{"a":`, 101) + "1" + strings.Repeat("}", 101),
	} {
		seeds = append(seeds, []byte(s))
	}
	files, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// Every good seed takes the fast path: without it the fuzz target above could pass with
// a fast path that accepts nothing.
func TestScanObjectTakesGoodBodies(t *testing.T) {
	n := 0
	for _, b := range scanSeeds(t) {
		if _, err := decodeObjectSlowly(b); err != nil || !utf8.Valid(b) || strings.Count(string(b), "{") > scanMaxDepth {
			continue
		}
		n++
		if _, ok := scanObject(b); !ok {
			t.Errorf("the fast path refuses %q", b)
		}
	}
	if n < 20 {
		t.Fatalf("only %d good seeds", n)
	}
}

func BenchmarkDecodeObject(b *testing.B) {
	body, err := os.ReadFile("testdata/gamezop_spp/sample.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name string
		fn   func([]byte) (map[string]any, error)
	}{{"scan", decodeObject}, {"encoding-json", decodeObjectSlowly}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := path.fn(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
