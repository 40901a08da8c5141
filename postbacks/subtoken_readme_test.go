package postbacks

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeSnippet returns the code block that follows <!-- sub-token:lang --> in README.md.
func readmeSnippet(t *testing.T, lang string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- sub-token:" + lang + " -->\n```[a-z]+\n(.*?)```")
	m := re.FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no %s sub-token snippet", lang)
	}
	return string(m[1])
}

// The README's snippets for a publisher's backend sign exactly as Tally verifies: the Go
// one is the example test's function, the JavaScript and Python ones are run here with
// node and python3 and must print Tally's token for the same input.
func TestReadmeSubTokenSnippets(t *testing.T) {
	example, err := os.ReadFile("subtoken_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if goSnippet := readmeSnippet(t, "go"); !strings.Contains(string(example), goSnippet) {
		t.Errorf("README's Go snippet is not the one ExampleSubTokens_User runs:\n%s", goSnippet)
	}
	secret := "publisher-secret-0123"
	tokens := SubTokens{Secrets: [][]byte{[]byte(secret)}}
	for _, c := range []struct {
		lang, bin, driver string
	}{
		{"js", "node", "\nconsole.log(signSub(process.argv[1], process.argv[2], Number(process.argv[3])));\n"},
		{"python", "python3", "\nimport sys\nprint(sign_sub(sys.argv[1].encode(), sys.argv[2], int(sys.argv[3])))\n"},
	} {
		bin, err := exec.LookPath(c.bin)
		if err != nil {
			// The issue asks for these to run where the interpreters exist; they do on the
			// project's machines, so say loudly when they do not.
			t.Errorf("%s not found: the README's %s snippet is untested here", c.bin, c.lang)
			continue
		}
		code := readmeSnippet(t, c.lang) + c.driver
		for _, user := range []string{"player-42", "jöhn.doe", "a.b.c", "用户"} {
			exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
			want, err := tokens.Sign(user, exp)
			if err != nil {
				t.Fatal(err)
			}
			var cmd *exec.Cmd
			if c.lang == "js" {
				cmd = exec.Command(bin, "-e", code, secret, user, strconv.FormatInt(exp.Unix(), 10))
			} else {
				cmd = exec.Command(bin, "-c", code, secret, user, strconv.FormatInt(exp.Unix(), 10))
			}
			// The answer is stdout: a shell shim's locale warning goes to stderr.
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s snippet: %v\n%s%s", c.lang, err, out, stderr.String())
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("%s snippet signs %q as %q, Tally as %q (stderr: %s)", c.lang, user, got, want, stderr.String())
			}
		}
	}
}
