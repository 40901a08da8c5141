package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"tally/config"
)

// readEnvFile reads KEY=value lines, skipping comments and blank lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not KEY=value: %q", path, line)
		}
		vars[k] = v
	}
	return vars
}

// The example runs on its own: .env.example sets every variable tally.example.yaml
// needs (so `tally check --config tally.example.yaml` passes with nothing else in the
// environment), and holds the values the Makefile exports for `make run` and `make check`.
func TestExampleRunsWithEnvExample(t *testing.T) {
	vars := readEnvFile(t, "../../.env.example")
	onlyThese := func(k string) string { return vars[k] }
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"check", "--config", "../../tally.example.yaml"}, onlyThese, &out, &errb); err != nil {
		t.Fatalf("check with only .env.example: %v", err)
	}
	if !strings.Contains(out.String(), "listen: 127.0.0.1:8080") {
		t.Errorf("the example does not listen on loopback only:\n%s", out.String())
	}
	// Its values are public: check says so, and config knows each of them.
	if !strings.Contains(out.String(), "warning: admin_token is a public development value") {
		t.Errorf("check does not warn of the public admin token:\n%s", out.String())
	}
	for k, v := range vars {
		if !slices.Contains(config.DevSecrets, v) {
			t.Errorf("%s: .env.example's %q is not in config.DevSecrets", k, v)
		}
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (\w+)\s*\?=\s*(\S+)$`).FindAllStringSubmatch(string(mk), -1) {
		exported[m[1]] = m[2]
	}
	if len(exported) != len(vars) {
		t.Errorf("the Makefile exports %v, .env.example has %v", exported, vars)
	}
	for k, v := range vars {
		if exported[k] != v {
			t.Errorf("%s: .env.example %q, Makefile %q", k, v, exported[k])
		}
	}
}
