package app

import (
	"strings"
	"testing"
)

func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, json string
	}{
		{"members keep their order", "b: 1\na: 2\n", `{"b":1,"a":2}`},
		{"scalars keep their YAML type", "i: 200\nf: 0.5\nt: true\nn: null\ns: '200'\nv: 3.1.0\nd: 2026-12-01\n",
			`{"i":200,"f":0.5,"t":true,"n":null,"s":"200","v":"3.1.0","d":"2026-12-01"}`},
		{"sequences and flow style", "a: [x, {y: 1}]\n", `{"a":["x",{"y":1}]}`},
		{"no HTML escaping", "p: '<a & b>'\n", `{"p":"<a & b>"}`},
		{"escapes stay text", `p: '^\uFEFF?a\n'` + "\n", `{"p":"^\\uFEFF?a\\n"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tc.yaml))
			if err != nil || string(got) != tc.json {
				t.Fatalf("got %s, %v; want %s", got, err, tc.json)
			}
		})
	}
	for _, tc := range []struct{ name, yaml, err string }{
		{"a duplicate key", "a: 1\nb: 2\na: 3\n", `line 3: duplicate key "a"`},
		{"a merge key", "x: &x {a: 1}\ny:\n  <<: *x\n", "merge keys"},
		{"two documents", "a: 1\n---\nb: 2\n", "found a second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := yamlToJSON([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want one saying %q", err, tc.err)
			}
		})
	}
}

// The embedded document converts: the binary would not start otherwise.
func TestOpenAPIJSONIsBuilt(t *testing.T) {
	if !strings.HasPrefix(string(openapiJSON), `{"openapi":"3.1.0",`) {
		t.Fatalf("openapiJSON starts %.40s", openapiJSON)
	}
}
